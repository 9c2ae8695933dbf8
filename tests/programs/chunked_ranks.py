"""Two forked ranks training the lesson in pieces of 7 rows (each rank holds 20), through
autograd or, with `fused`, the fused pass (core/fused.py); the first saves its train losses to
OUT.npy. The fork comes first in a fresh process, as in the train stage.

    python -m tests.programs.chunked_ranks OUT.npy [fused]
"""

from __future__ import annotations

import sys
from functools import partial

import numpy as np

from linreg.core import batches, fused
from linreg.core.dataset import Dataset, split_dataset
from linreg.core.params import Params, with_overrides
from linreg.core.placement import Placement, placement
from linreg.core.synthetic import generate_blocks
from linreg.core.training import fit
from linreg.io.params import load_params
from linreg.runtime.launcher import run_ranks


def part(data: Dataset, where: Placement) -> Dataset:
    """The rank-th of world_size consecutive runs of rows."""
    bounds = len(data) * np.arange(where.rank, where.rank + 2) // where.world_size
    return data.rows(slice(*bounds))


def work(params: Params, out: str) -> None:
    where = placement("cpu")
    data = Dataset.joined(list(generate_blocks(params.generate)))
    train, test = split_dataset(data, params.split)
    result = fit(params.train, part(train, where), part(test, where))
    if where.writes:
        np.save(out, result.history.train_loss)


def main() -> None:
    batches.CHUNK_ROWS = 7
    if sys.argv[2:] == ["fused"]:
        fused.FUSED_MIN_ROWS = 0
    params = with_overrides(load_params(), {"train.device": "cpu", "train.epochs": 30}, "test")
    run_ranks(2, "cpu", partial(work, params, sys.argv[1]))


if __name__ == "__main__":
    main()
