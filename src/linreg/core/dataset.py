"""The dataset (feature columns and a target column) and the train/test split. numpy only: the
split stage never imports torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from linreg.core.errors import PipelineError, shorten

if TYPE_CHECKING:
    from linreg.core.params import SplitParams

# Rows made, read or written at a time by the stages that stream their data: a block of the
# lesson's two columns is 8 MiB of float32, whatever the size of the file.
BLOCK_ROWS = 1 << 20


@dataclass(frozen=True)
class Dataset:
    """Rows of k features and a target. The lesson's data is k = 1: columns x and y."""

    x: np.ndarray  # (n, k) float32, or float64 (a CSV source's numbers as written)
    y: np.ndarray  # (n,) of x's dtype
    features: tuple[str, ...] = ("x",)  # the k feature columns' names
    target: str = "y"  # the target column's name

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.x.shape != (len(self.y), len(self.features)):
            raise ValueError(
                f"x of shape {self.x.shape} does not hold {len(self.y)} rows of features "
                f"{self.features}"
            )

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, selection: np.ndarray | slice) -> Dataset:
        """The dataset of the selected rows (an index array or a slice)."""
        return Dataset(self.x[selection], self.y[selection], self.features, self.target)

    def astype(self, dtype: np.dtype) -> Dataset:
        """The same rows in `dtype`: no copy when they are in it already."""
        x, y = self.x.astype(dtype, copy=False), self.y.astype(dtype, copy=False)
        return Dataset(x, y, self.features, self.target)

    @staticmethod
    def joined(blocks: Sequence[Dataset]) -> Dataset:
        """Blocks of rows (of the same columns) as one dataset."""
        x, y = np.concatenate([b.x for b in blocks]), np.concatenate([b.y for b in blocks])
        return Dataset(x, y, blocks[0].features, blocks[0].target)


def line_values(weights: Sequence[float] | np.ndarray, bias: float, x: np.ndarray) -> np.ndarray:
    """weights . x + bias for (n, k) x, in float64, a feature at a time: the same bits on any CPU
    (a matrix product's sums depend on the BLAS)."""
    total = np.full(len(x), bias, dtype=np.float64)
    for j, weight in enumerate(weights):
        total += weight * x[:, j].astype(np.float64)
    return total


def as_features(columns: list[np.ndarray]) -> np.ndarray:
    """k (n,) columns -> (n, k); one column is viewed, not copied (the lesson's 10^7 rows)."""
    if len(columns) == 1:
        return columns[0].reshape(-1, 1)
    return np.stack(columns, axis=1)


def require_same_columns(train: Dataset, test: Dataset, train_name: str, test_name: str) -> None:
    """A one-line error when the test set's columns are not the train set's, in the same order
    (a split of other data, or a hand-edited file)."""
    if (train.features, train.target) != (test.features, test.target):
        raise PipelineError(
            f"{test_name}: columns {shorten(', '.join((*test.features, test.target)))} differ "
            f"from {train_name}'s {shorten(', '.join((*train.features, train.target)))}; rerun "
            "the split stage"
        )


def split_dataset(dataset: Dataset, params: SplitParams) -> tuple[Dataset, Dataset]:
    """The first train_fraction of the rows train, the rest test; shuffled first if asked."""
    cut = train_rows(params, len(dataset))
    if params.shuffle:
        dataset = dataset.rows(np.random.default_rng(params.seed).permutation(len(dataset)))
    return dataset.rows(slice(None, cut)), dataset.rows(slice(cut, None))


def train_rows(params: SplitParams, rows: int) -> int:
    """How many of `rows` go to the train set; a one-line error when either set would be empty."""
    problem = params.split_problem(rows)
    if problem:
        raise PipelineError(problem)
    return params.train_rows(rows)
