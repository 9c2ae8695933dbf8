"""fit's first call in a fresh process and the same call repeated: the set-up a train stage pays
once. As the stage does, it starts torch.optim's lazy import (linreg.runtime.preload) and then
reads FOLDER/train.csv and FOLDER/test.csv (harness.project.write_lesson_split); then it fits
the lesson's line (cpu, full batch) for EPOCHS epochs, twice. Prints the seconds of each call
as a JSON list (bench/scale.py).

    python -m harness.fit_calls FOLDER EPOCHS
"""

import json
import sys
import time
from pathlib import Path

from linreg.core.params import with_overrides
from linreg.core.training import fit
from linreg.io.datasets import read_split
from linreg.io.params import load_params
from linreg.runtime.preload import start_importing

if __name__ == "__main__":
    folder, epochs = Path(sys.argv[1]), int(sys.argv[2])
    start_importing()
    train, test = read_split(folder / "train.csv", folder / "test.csv")
    overrides = {"train.epochs": epochs, "train.device": "cpu"}
    params = with_overrides(load_params(), overrides, "bench").train
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        fit(params, train, test)
        seconds.append(time.perf_counter() - start)
    print(json.dumps(seconds))
