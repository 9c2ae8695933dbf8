"""fit's first call in a fresh process and the same call repeated: the set-up a train stage pays
once, at ROWS rows (the lesson's line, cpu, full batch) and EPOCHS epochs; the seconds of each
as a JSON list (bench/scale.py).

    python -m harness.fit_calls ROWS EPOCHS
"""

import json
import sys
import time

from harness.project import synthetic_dataset
from linreg.core.dataset import split_dataset
from linreg.core.params import with_overrides
from linreg.core.training import fit
from linreg.io.params import load_params

if __name__ == "__main__":
    rows, epochs = int(sys.argv[1]), int(sys.argv[2])
    overrides = {"generate.step": 1 / rows, "train.epochs": epochs, "train.device": "cpu"}
    params = with_overrides(load_params(), overrides, "bench")
    train, test = split_dataset(synthetic_dataset(params.generate), params.split)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        fit(params.train, train, test)
        seconds.append(time.perf_counter() - start)
    print(json.dumps(seconds))
