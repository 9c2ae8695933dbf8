"""The pipeline's outputs besides the data, each with its format written once: the truth the
data was drawn from, the train log (loss per epoch) and the predictions on the test set. numpy
only: the plot stage and the experiment tooling read them without torch."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from linreg.conventions import PREDICTION_SUFFIX
from linreg.dataset import Dataset, as_features
from linreg.errors import PipelineError
from linreg.files import (
    csv_writer,
    read_csv,
    read_csv_blocks,
    require_file,
    write_csv,
    write_json,
)


@dataclass(frozen=True)
class Truth:
    """The line synthetic data was drawn from: a weight per feature and the bias."""

    weight: float | list[float]  # as generate.weight gives it: a number for one feature
    bias: float

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(self.weight) if isinstance(self.weight, list) else (self.weight,)


def write_truth(path: str | Path, truth: Truth | None) -> None:
    """data/truth.json: the true weight and bias, or nulls when they are not known (a CSV)."""
    write_json(
        path, {"weight": truth.weight, "bias": truth.bias} if truth else dict.fromkeys(_TRUTH_KEYS)
    )


_TRUTH_KEYS = tuple(field.name for field in fields(Truth))


def read_truth(path: str | Path) -> Truth | None:
    path = require_file(path, "run the generate stage first")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or sorted(data) != sorted(_TRUTH_KEYS):
        raise PipelineError(f"{path}: expected an object with keys {', '.join(_TRUTH_KEYS)}")
    if data["weight"] is None and data["bias"] is None:
        return None
    return Truth(data["weight"], data["bias"])


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
    """The test set and the model's predictions of its target; as CSV, the test set's columns
    and then the predictions (the lesson's x, y, y_pred)."""

    data: Dataset  # the test set
    y_pred: np.ndarray  # (n,) float32

    @property
    def x(self) -> np.ndarray:
        return self.data.x

    @property
    def y(self) -> np.ndarray:
        return self.data.y

    def __len__(self) -> int:
        return len(self.y_pred)

    def rows(self, selection: np.ndarray | slice) -> Predictions:
        return Predictions(self.data.rows(selection), self.y_pred[selection])

    @staticmethod
    def joined(blocks: Sequence[Predictions]) -> Predictions:
        """Blocks of rows as one."""
        data = Dataset.joined([b.data for b in blocks])
        return Predictions(data, np.concatenate([b.y_pred for b in blocks]))


def _columns(artifact: type[Any]) -> tuple[str, ...]:
    return tuple(field.name for field in fields(artifact))


TRAIN_LOG_COLUMNS = _columns(TrainLog)


def write_train_log(path: str | Path, log: TrainLog) -> None:
    write_csv(path, {name: getattr(log, name) for name in TRAIN_LOG_COLUMNS})


def read_train_log(path: str | Path) -> TrainLog:
    return TrainLog(**read_csv(path, TRAIN_LOG_COLUMNS))


@contextmanager
def predictions_writer(path: str | Path) -> Iterator[Callable[[Predictions], None]]:
    """A function that appends predictions, a block of rows at a time, to a new predictions CSV
    at `path`, written atomically when the block ends (inside all_or_none: at its end)."""
    with ExitStack() as stack:
        write_rows: Callable[[Mapping[str, np.ndarray]], None] | None = None

        def write(predictions: Predictions) -> None:
            nonlocal write_rows
            columns = _prediction_columns(predictions)
            if write_rows is None:  # the columns are known with the first block
                write_rows = stack.enter_context(csv_writer(path, list(columns), None))
            write_rows(columns)

        yield write


def _prediction_columns(predictions: Predictions) -> dict[str, np.ndarray]:
    test = predictions.data
    columns = {name: test.x[:, i] for i, name in enumerate(test.features)}
    return columns | {test.target: test.y, test.target + PREDICTION_SUFFIX: predictions.y_pred}


def read_predictions(path: str | Path) -> Predictions:
    return _as_predictions(path, read_csv(path))


def read_prediction_blocks(path: str | Path) -> Iterator[Predictions]:
    """read_predictions a block of rows at a time (files.read_csv_blocks)."""
    return (_as_predictions(path, columns) for columns in read_csv_blocks(path))


def _as_predictions(path: str | Path, columns: dict[str, np.ndarray]) -> Predictions:
    names = list(columns)
    if len(names) < 3 or names[-1] != names[-2] + PREDICTION_SUFFIX:
        raise PipelineError(
            f"{path}: expected the feature columns, the target and its predictions (named "
            f"after it, with {PREDICTION_SUFFIX}), last; found {', '.join(names)}"
        )
    *features, target, predicted = names
    x = as_features([columns[name] for name in features])
    return Predictions(Dataset(x, columns[target], tuple(features), target), columns[predicted])
