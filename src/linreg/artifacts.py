"""The pipeline's two tabular outputs besides the data, each with its columns written once: the
train log (loss per epoch) and the predictions on the test set. numpy only: the plot stage and
the experiment tooling read them without torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from linreg.files import read_csv, write_csv


@dataclass(frozen=True)
class TrainLog:
    epoch: np.ndarray  # (epochs,) int64
    train_loss: np.ndarray  # (epochs,) float32, computed before that epoch's update
    test_loss: np.ndarray  # (epochs,) float32, computed after it

    @classmethod
    def of(cls, train_loss: Sequence[float], test_loss: Sequence[float]) -> TrainLog:
        """The log of the epochs recorded so far, from their losses (float32 values)."""
        return cls(
            epoch=np.arange(len(train_loss), dtype=np.int64),
            train_loss=np.array(train_loss, dtype=np.float32),
            test_loss=np.array(test_loss, dtype=np.float32),
        )


@dataclass(frozen=True)
class Predictions:
    x: np.ndarray  # (n,) float32, the test inputs
    y: np.ndarray  # (n,) float32, their targets
    y_pred: np.ndarray  # (n,) float32, the model's predictions


def _columns(artifact: type[Any]) -> tuple[str, ...]:
    return tuple(field.name for field in fields(artifact))


TRAIN_LOG_COLUMNS = _columns(TrainLog)
PREDICTION_COLUMNS = _columns(Predictions)


def write_train_log(path: str | Path, log: TrainLog) -> None:
    write_csv(path, {name: getattr(log, name) for name in TRAIN_LOG_COLUMNS})


def read_train_log(path: str | Path) -> TrainLog:
    return TrainLog(**read_csv(path, TRAIN_LOG_COLUMNS))


def write_predictions(path: str | Path, predictions: Predictions, progress: bool = False) -> None:
    columns = {name: getattr(predictions, name) for name in PREDICTION_COLUMNS}
    write_csv(path, columns, progress=progress)


def read_predictions(path: str | Path) -> Predictions:
    return Predictions(**read_csv(path, PREDICTION_COLUMNS))
