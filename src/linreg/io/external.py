"""A user's own table as the pipeline's data: the chosen columns of a CSV file under
data/external/, checked. numpy only: the generate stage never imports torch."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from linreg.core.dataset import Dataset, as_features
from linreg.core.errors import PipelineError, shown
from linreg.core.params import EXTERNAL_DATA, CsvParams
from linreg.io.files import require_file
from linreg.io.tables import MISSING_CELLS, read_csv

# A train and a test row at the least: the split needs one of each.
MIN_ROWS = 2


def read_external_csv(params: CsvParams, root: Path = Path()) -> tuple[Dataset, int]:
    """The features and the target that `params` names, from its CSV file under `root`, and
    how many rows generate.missing: drop left out for a missing cell (MISSING_CELLS).

    Every other chosen cell must be a finite number; the file needs MIN_ROWS rows and no
    feature may be constant (it carries nothing, and standardising it would divide by zero).
    Values are read as float64, each as written: the data files keep them to a double's
    precision (train.dtype chooses the precision training computes in).
    """
    path = require_file(
        root / params.source, f"add it under {EXTERNAL_DATA}/: docs/your-own-data.md"
    )
    # the folder itself as it lies in the repository, not where a link in its place leads
    inside = root.resolve() / EXTERNAL_DATA
    if not path.resolve().is_relative_to(inside):  # a link that leads out of the folder
        raise PipelineError(
            f"{params.source}: leads to {path.resolve()}, outside {EXTERNAL_DATA}/; copy the "
            "file in (dvc add tracks it) rather than linking to it"
        )
    names = [*params.features, params.target]
    columns = read_csv(path, names, ours=False, missing=MISSING_CELLS, dtype=np.float64)
    complete = np.logical_and.reduce([~np.isnan(columns[name]) for name in names])
    dropped = len(complete) - int(complete.sum())
    if dropped and params.missing == "error":
        line, name, cell = _first_missing(path, names)
        raise PipelineError(
            f"{params.source}: {dropped:,} of {len(complete):,} rows have a missing cell (the "
            f"first: line {line}, column {shown(name)}: {shown(cell)}); generate.missing: drop "
            "leaves them out"
        )
    if dropped:
        columns = {name: values[complete] for name, values in columns.items()}
    rows = len(columns[params.target])
    if rows < MIN_ROWS:
        raise PipelineError(
            f"{params.source}: {rows} data row; at least {MIN_ROWS} are needed (a train and a "
            "test row)"
        )
    for name in params.features:
        values = columns[name]
        if np.all(values == values[0]):
            raise PipelineError(
                f"{params.source}: column {shown(name)} is constant (every row {values[0]:g}): "
                "it carries no information and standardising it (train.standardize) would "
                "divide by zero; drop it from generate.features"
            )
    x = as_features([columns[name] for name in params.features])
    return Dataset(x, columns[params.target], tuple(params.features), params.target), dropped


def _first_missing(path: Path, names: list[str]) -> tuple[int, str, str]:
    """The line, the column and the text of the first missing cell among `names` (a slow pass,
    for the error only)."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = csv.reader(file)
        header = next(rows)
        for row in rows:
            for name in names:
                if row and row[header.index(name)] in MISSING_CELLS:
                    return rows.line_num, name, row[header.index(name)]
    raise AssertionError(f"{path}: no missing cell found")  # read_csv found one
