"""The dataset (feature columns and a target column) and the train/test split. numpy only: the
split stage never imports torch."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from linreg.errors import PipelineError, shorten
from linreg.files import (
    all_or_none,
    csv_writer,
    read_csv,
    read_csv_blocks,
    read_csv_part,
    write_csv,
    write_csv_chunks,
)

if TYPE_CHECKING:
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


def read_dataset(path: str | Path) -> Dataset:
    """Read a data CSV: the feature columns, then the target column, last."""
    return _as_dataset(path, read_csv(path))


def read_blocks(path: str | Path) -> Iterator[Dataset]:
    """read_dataset a block of rows at a time (files.read_csv_blocks)."""
    return (_as_dataset(path, columns) for columns in read_csv_blocks(path))


def _as_dataset(path: str | Path, columns: dict[str, np.ndarray]) -> Dataset:
    if len(columns) < 2:
        raise PipelineError(
            f"{path}: {len(columns)} column(s); expected feature columns and the target, last"
        )
    *features, target = columns
    x = as_features([columns[name] for name in features])
    return Dataset(x, columns[target], tuple(features), target)


def read_split(
    train_path: str | Path, test_path: str | Path, part: int = 0, parts: int = 1
) -> tuple[Dataset, Dataset]:
    """Read the train and test sets, which must have the same columns in the same order; with
    `parts` > 1, only the lines of each file's part-th of `parts` (files.line_range)."""
    if parts == 1:
        train, test = read_dataset(train_path), read_dataset(test_path)
    else:
        train, test = (
            _as_dataset(p, read_csv_part(p, part, parts)) for p in (train_path, test_path)
        )
    require_same_columns(train, test, str(train_path), str(test_path))
    return train, test


def require_same_columns(train: Dataset, test: Dataset, train_name: str, test_name: str) -> None:
    """A one-line error when the test set's columns are not the train set's, in the same order
    (a split of other data, or a hand-edited file)."""
    if (train.features, train.target) != (test.features, test.target):
        raise PipelineError(
            f"{test_name}: columns {shorten(', '.join((*test.features, test.target)))} differ "
            f"from {train_name}'s {shorten(', '.join((*train.features, train.target)))}; rerun "
            "the split stage"
        )


def write_dataset(path: str | Path, dataset: Dataset) -> None:
    write_csv(path, _columns(dataset))


def write_blocks(path: str | Path, blocks: Iterable[Dataset], rows: int) -> None:
    """Write a dataset made a block at a time, as it comes (`rows` in all, at least one)."""
    blocks = iter(blocks)
    first = next(blocks)
    chunks = (_columns(block) for block in itertools.chain([first], blocks))
    write_csv_chunks(path, [*first.features, first.target], chunks, rows)


def _columns(dataset: Dataset) -> dict[str, np.ndarray]:
    columns = {name: dataset.x[:, i] for i, name in enumerate(dataset.features)}
    return columns | {dataset.target: dataset.y}


def split_dataset(dataset: Dataset, params: SplitParams) -> tuple[Dataset, Dataset]:
    """The first train_fraction of the rows train, the rest test; shuffled first if asked."""
    cut = _train_rows(params, len(dataset))
    if params.shuffle:
        dataset = dataset.rows(np.random.default_rng(params.seed).permutation(len(dataset)))
    return dataset.rows(slice(None, cut)), dataset.rows(slice(cut, None))


def _train_rows(params: SplitParams, rows: int) -> int:
    problem = params.split_problem(rows)
    if problem:
        raise PipelineError(problem)
    return params.train_rows(rows)


def split_file(
    raw: str | Path,
    train: str | Path,
    test: str | Path,
    params: SplitParams,
) -> None:
    """split_dataset from file to files, both written or neither. In order, a block of rows at a
    time in two passes (count, then copy): memory holds a block whatever the rows. Shuffled,
    all the rows are held: a permutation needs them."""
    if params.shuffle:
        train_set, test_set = split_dataset(read_dataset(raw), params)
        with all_or_none():
            write_dataset(train, train_set)
            write_dataset(test, test_set)
        return
    rows, names = 0, []
    for block in read_blocks(raw):  # the first pass: count (and check) the rows
        rows, names = rows + len(block), [*block.features, block.target]
    cut = _train_rows(params, rows)
    with (
        all_or_none(),
        csv_writer(train, names, cut) as to_train,
        csv_writer(test, names, rows - cut) as to_test,
    ):
        done = 0
        for block in read_blocks(raw):
            head = min(max(cut - done, 0), len(block))  # this block's rows that go to train
            if head:
                to_train(_columns(block.rows(slice(None, head))))
            if head < len(block):
                to_test(_columns(block.rows(slice(head, None))))
            done += len(block)
