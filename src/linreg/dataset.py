"""The dataset (feature columns and a target column) and the train/test split. numpy only: the
split stage never imports torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linreg.errors import PipelineError, shorten
from linreg.files import read_csv, write_csv
from linreg.params import SplitParams


@dataclass(frozen=True)
class Dataset:
    """Rows of k features and a target. The lesson's data is k = 1: columns x and y."""

    x: np.ndarray  # (n, k) float32
    y: np.ndarray  # (n,) float32
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


def read_dataset(path: str | Path) -> Dataset:
    """Read a data CSV: the feature columns, then the target column, last."""
    columns = read_csv(path)
    if len(columns) < 2:
        raise PipelineError(
            f"{path}: {len(columns)} column(s); expected feature columns and the target, last"
        )
    *features, target = columns
    return Dataset(
        as_features([columns[name] for name in features]), columns[target], tuple(features), target
    )


def read_split(train_path: str | Path, test_path: str | Path) -> tuple[Dataset, Dataset]:
    """Read the train and test sets, which must have the same columns in the same order."""
    train, test = read_dataset(train_path), read_dataset(test_path)
    if (train.features, train.target) != (test.features, test.target):
        raise PipelineError(
            f"{test_path}: columns {shorten(', '.join((*test.features, test.target)))} differ "
            f"from {train_path}'s {shorten(', '.join((*train.features, train.target)))}; rerun "
            "the split stage"
        )
    return train, test


def write_dataset(path: str | Path, dataset: Dataset, progress: bool = False) -> None:
    columns = {name: dataset.x[:, i] for i, name in enumerate(dataset.features)}
    write_csv(path, columns | {dataset.target: dataset.y}, progress)


def split_dataset(dataset: Dataset, params: SplitParams) -> tuple[Dataset, Dataset]:
    """The first train_fraction of the rows train, the rest test; shuffled first if asked."""
    cut = params.train_rows(len(dataset))
    if not 1 <= cut < len(dataset):
        raise PipelineError(
            f"split.train_fraction = {params.train_fraction!r}: leaves {cut} train and "
            f"{len(dataset) - cut} test rows of {len(dataset)}; each set needs at least 1 row"
        )
    if params.shuffle:
        dataset = dataset.rows(np.random.default_rng(params.seed).permutation(len(dataset)))
    return dataset.rows(slice(None, cut)), dataset.rows(slice(cut, None))
