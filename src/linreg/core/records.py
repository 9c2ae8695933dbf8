"""What the stages hand each other besides the data: the truth the data was drawn from, the
train log (loss per epoch) and the predictions on the test set. numpy only: the plot stage and
the experiment tooling use them without torch. Their files: linreg.io.artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from linreg.core.dataset import Dataset


@dataclass(frozen=True)
class Truth:
    """The line synthetic data was drawn from: a weight per feature and the bias."""

    weight: float | list[float]  # as generate.weight gives it: a number for one feature
    bias: float

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(self.weight) if isinstance(self.weight, list) else (self.weight,)


@dataclass(frozen=True)
class TrainLog:
    epoch: np.ndarray  # (epochs,) int64
    train_loss: np.ndarray  # (epochs,) of train.dtype, computed before that epoch's update
    test_loss: np.ndarray  # (epochs,) of train.dtype, computed after it

    @classmethod
    def of(
        cls,
        train_loss: Sequence[float],
        test_loss: Sequence[float],
        dtype: type[np.floating] = np.float32,
    ) -> TrainLog:
        """The log of the epochs recorded so far, from their losses (values of `dtype`)."""
        return cls(
            epoch=np.arange(len(train_loss), dtype=np.int64),
            train_loss=np.array(train_loss, dtype=dtype),
            test_loss=np.array(test_loss, dtype=dtype),
        )


@dataclass(frozen=True)
class Predictions:
    """The test set and the model's predictions of its target; as CSV, the test set's columns
    and then the predictions (the lesson's x, y, y_pred)."""

    data: Dataset  # the test set
    y_pred: np.ndarray  # (n,) in the model's precision

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


@dataclass(frozen=True)
class Coefficients:
    """reports/coefficients.csv: per feature, then the bias, the trained line's value in the
    data's units (None: the model is not a line) and the train set's least-squares one."""

    terms: tuple[str, ...]  # the features' names, then "bias"
    trained: np.ndarray | None  # (k + 1,) float64
    least_squares: np.ndarray  # (k + 1,) float64
