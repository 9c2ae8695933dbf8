"""The (x, y) dataset and the train/test split. numpy only: the split stage never imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linreg.files import read_csv, write_csv
from linreg.params import SplitParams


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # (n,) float32
    y: np.ndarray  # (n,) float32

    def __len__(self) -> int:
        return len(self.x)


def read_dataset(path: str | Path) -> Dataset:
    """Read a CSV file with columns x and y."""
    columns = read_csv(path, ("x", "y"))
    return Dataset(columns["x"], columns["y"])


def write_dataset(path: str | Path, dataset: Dataset, progress: bool = False) -> None:
    write_csv(path, {"x": dataset.x, "y": dataset.y}, progress)


def split_dataset(dataset: Dataset, params: SplitParams) -> tuple[Dataset, Dataset]:
    """The first train_fraction of the rows train, the rest test; shuffled first if asked."""
    x, y = dataset.x, dataset.y
    if params.shuffle:
        order = np.random.default_rng(params.seed).permutation(len(dataset))
        x, y = x[order], y[order]
    cut = params.train_rows(len(dataset))
    return Dataset(x[:cut], y[:cut]), Dataset(x[cut:], y[cut:])
