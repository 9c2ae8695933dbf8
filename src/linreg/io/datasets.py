"""The data files: data/raw.csv, data/train.csv and data/test.csv, the feature columns and then
the target, read whole, a block of rows at a time or a rank's part; and the split from file to
files. numpy only: the split stage never imports torch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from linreg.core.dataset import (
    Dataset,
    as_features,
    require_same_columns,
    split_dataset,
    train_rows,
)
from linreg.core.errors import PipelineError
from linreg.io.files import all_or_none
from linreg.io.tables import count_rows, csv_blocks, csv_writer, read_csv, write_csv

if TYPE_CHECKING:
    from linreg.core.params import SplitParams


def read_dataset(
    path: str | Path, part: int = 0, parts: int = 1, dtype: type[np.floating] = np.float32
) -> Dataset:
    """A data CSV whole (or the part-th of `parts` of its lines: tables.line_range), as `dtype`
    (float64: each number as written)."""
    return _as_dataset(path, read_csv(path, part=part, parts=parts, dtype=dtype))


def read_blocks(
    path: str | Path,
    rows: int | None = None,
    ahead: bool = False,
    dtype: type[np.floating] = np.float32,
) -> Iterator[Dataset]:
    """read_dataset a block of rows at a time (tables.csv_blocks; `rows`: as counted before;
    `ahead`: the next block read while this one is used)."""
    blocks = csv_blocks(path, rows=rows, ahead=ahead, dtype=dtype)
    return (_as_dataset(path, columns) for columns in blocks)


def _as_dataset(path: str | Path, columns: dict[str, np.ndarray]) -> Dataset:
    if len(columns) < 2:
        raise PipelineError(
            f"{path}: {len(columns)} column(s); expected feature columns and the target, last"
        )
    *features, target = columns
    x = as_features([columns[name] for name in features])
    return Dataset(x, columns[target], tuple(features), target)


def read_split(
    train_path: str | Path,
    test_path: str | Path,
    part: int = 0,
    parts: int = 1,
    dtype: str = "float32",
) -> tuple[Dataset, Dataset]:
    """The train and test sets (or this rank's parts of them) in `dtype` (train.dtype: float64
    reads each number as written), which must have the same columns in the same order."""
    precision = np.dtype(dtype).type
    train, test = (read_dataset(path, part, parts, precision) for path in (train_path, test_path))
    require_same_columns(train, test, str(train_path), str(test_path))
    return train, test


def write_dataset(path: str | Path, dataset: Dataset) -> None:
    write_csv(path, _columns(dataset))


def write_blocks(path: str | Path, blocks: Iterable[Dataset], rows: int) -> None:
    """Write a dataset made a block at a time, as it comes (`rows` in all)."""
    with csv_writer(path, None, rows) as write:
        for block in blocks:
            write(_columns(block))


def _columns(dataset: Dataset) -> dict[str, np.ndarray]:
    columns = {name: dataset.x[:, i] for i, name in enumerate(dataset.features)}
    return columns | {dataset.target: dataset.y}


def split_file(raw: str | Path, train: str | Path, test: str | Path, params: SplitParams) -> None:
    """split_dataset from file to files, both written or neither. In order, a block of rows at a
    time once the rows are counted: memory holds a block whatever the rows. Shuffled, all the
    rows are held: a permutation needs them. The numbers are read as float64 and so written
    again as they were (a float32's shortest text is a float64's too): a CSV source's
    precision is kept."""
    if params.shuffle:
        train_set, test_set = split_dataset(read_dataset(raw, dtype=np.float64), params)
        with all_or_none():
            write_dataset(train, train_set)
            write_dataset(test, test_set)
        return
    rows = count_rows(raw)
    if params.split_problem(rows):  # a bad line in the data, if any, is what to say first
        for _ in read_blocks(raw, rows, dtype=np.float64):
            pass
    cut = train_rows(params, rows)
    with (
        all_or_none(),
        csv_writer(train, None, cut) as to_train,
        csv_writer(test, None, rows - cut) as to_test,
    ):
        done = 0
        for block in read_blocks(raw, rows, ahead=True, dtype=np.float64):
            head = min(max(cut - done, 0), len(block))  # this block's rows that go to train
            if head:
                to_train(_columns(block.rows(slice(None, head))))
            if head < len(block):
                to_test(_columns(block.rows(slice(head, None))))
            done += len(block)
