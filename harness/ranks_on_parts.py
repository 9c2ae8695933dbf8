"""N forked ranks, each reading its part of train.csv and test.csv in a folder at train.dtype
and training together; the first rank saves the losses and the coefficients (weights, then
bias) as .npz. The fork comes first in a fresh process, as in the train stage.

    python -m harness.ranks_on_parts FOLDER OUT.npz OVERRIDES_JSON NPROC
"""

from __future__ import annotations

import json
import sys
from functools import partial

import numpy as np

from linreg.core.model import line_coefficients
from linreg.core.params import TrainParams, with_overrides
from linreg.core.placement import placement
from linreg.core.training import fit
from linreg.io.datasets import read_split
from linreg.io.params import load_params
from linreg.runtime.launcher import in_group, spawn


def work(folder: str, out: str, params: TrainParams) -> None:
    """One rank's part: read, train with the others, and the first rank saves."""
    where = placement("cpu")
    train, test = read_split(
        f"{folder}/train.csv", f"{folder}/test.csv", where.rank, where.world_size, params.dtype
    )
    result = fit(params, train, test)
    if where.writes:
        weights, bias = line_coefficients(result.model)
        history = result.history
        np.savez(
            out,
            train_loss=history.train_loss,
            test_loss=history.test_loss,
            coefficients=[*weights, bias],
        )


def main() -> None:
    folder, out, overrides, nproc = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    params = with_overrides(load_params(), overrides, "harness").train
    # not run_ranks: 3 ranks on a 2-core machine
    spawn(int(nproc), in_group, "cpu", partial(work, folder, out, params))


if __name__ == "__main__":
    main()
