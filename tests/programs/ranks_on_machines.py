"""Two ranks forked here, each in its own folder (FOLDER/node<rank>: a machine of its own),
train the lesson's split in FOLDER with a resume point every epoch; STOP_AFTER >= 0: both stop
after that epoch, as a lost node stops a run; rank 0 saves the coefficients and losses in OUT.
The fork comes first in a fresh process, as in the stage.

    python -m tests.programs.ranks_on_machines FOLDER STOP_AFTER OUT
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from linreg.core.model import line_coefficients
from linreg.core.params import TrainParams, with_overrides
from linreg.core.placement import placement
from linreg.core.training import Losses, TrainingState, fit
from linreg.io.datasets import read_split
from linreg.io.params import load_params
from linreg.runtime.launcher import in_group, spawn
from linreg.runtime.training_run import TrainingRun

OVERRIDES = {"train.device": "cpu", "train.epochs": 120, "train.checkpoint_seconds": 1e-9}


class StoppingRun(TrainingRun):
    """The stage's run, which stops the process after epoch `stop_after` (-1: never)."""

    stop_after = -1

    def end_of_epoch(self, epoch: int, losses: Losses, state: Callable[[], TrainingState]) -> None:
        super().end_of_epoch(epoch, losses, state)
        if epoch == self.stop_after:
            raise SystemExit(3)


def work(folder: Path, out: str, params: TrainParams) -> None:
    where = placement("cpu")
    data = [folder / "train.csv", folder / "test.csv"]
    os.chdir(folder / f"node{where.rank}")
    with StoppingRun(params, data, "train_log.csv") as run:
        result = fit(params, *read_split(*data, run.part, run.parts), run)
    if where.rank == 0:
        weights, bias = line_coefficients(result.model)
        np.savez(out, coefficients=[*weights, bias], train_loss=result.history.train_loss)


def main() -> None:
    folder, stop_after, out = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    StoppingRun.stop_after = stop_after
    params = with_overrides(load_params(), OVERRIDES, "test").train
    spawn(2, in_group, "cpu", partial(work, folder, out, params))


if __name__ == "__main__":
    main()
