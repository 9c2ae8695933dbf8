"""A user's own table as the pipeline's data: the chosen columns of a CSV file under
data/external/, checked. numpy only: the generate stage never imports torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linreg.core.dataset import Dataset, as_features
from linreg.core.errors import PipelineError, shown
from linreg.core.params import EXTERNAL_DATA, CsvParams
from linreg.io.files import require_file
from linreg.io.tables import read_csv

# A train and a test row at the least: the split needs one of each.
MIN_ROWS = 2


def read_external_csv(params: CsvParams, root: Path = Path()) -> Dataset:
    """The features and the target that `params` names, from its CSV file under `root`.

    Every chosen cell must be a finite number; the file needs MIN_ROWS rows and no feature may
    be constant (it carries nothing, and standardising it would divide by zero). Values are
    read as float32, as the whole pipeline computes.
    """
    path = require_file(
        root / params.source, f"add it under {EXTERNAL_DATA}/: docs/your-own-data.md"
    )
    inside = (root / EXTERNAL_DATA).resolve()
    if not path.resolve().is_relative_to(inside):  # a link that leads out of the folder
        raise PipelineError(
            f"{params.source}: leads to {path.resolve()}, outside {EXTERNAL_DATA}/; copy the "
            "file in (dvc add tracks it) rather than linking to it"
        )
    columns = read_csv(path, [*params.features, params.target], ours=False)
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
    return Dataset(x, columns[params.target], tuple(params.features), params.target)
