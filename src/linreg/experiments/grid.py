"""A sweep's grid: KEY=V1,V2 specs, their cross product, experiment names and the results
table. Pure: text in, text out."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from linreg.core.errors import PipelineError
from linreg.core.evaluation import METRIC_GOALS
from linreg.experiments.report import markdown_table

# A grid point: each swept dotted key and its value, as written (the text `dvc exp run -S` gets).
Point = dict[str, str]


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """'train.lr=0.001,0.01 train.epochs=100,200' (one spec per key) -> {key: [values]}."""
    grid: dict[str, list[str]] = {}
    for spec in (part for text in specs for part in text.split()):
        key, sep, values = spec.partition("=")
        key = key.strip()
        texts = [value.strip() for value in values.split(",")]
        if not sep or not key or not all(texts):
            raise PipelineError(f"GRID: {spec!r}: expected KEY=V1,V2,..., e.g. train.lr=0.001,0.01")
        if key in grid:
            raise PipelineError(f"GRID: {key} is given twice; list all its values once: {key}=a,b")
        grid[key] = list(dict.fromkeys(texts))  # a value given twice is one point, not two
    if not grid:
        raise PipelineError("GRID: empty; give KEY=V1,V2,..., e.g. GRID='train.lr=0.001,0.01'")
    return grid


def grid_points(grid: Mapping[str, Sequence[str]]) -> list[Point]:
    """The cross product of the grid, the last key varying fastest."""
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def experiment_name(point: Point, taken: set[str]) -> str:
    """'train.lr=0.01,train.epochs=200', suffixed -2, -3, ... past the names in `taken`."""
    name = ",".join(f"{key}={value}" for key, value in point.items())
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def render_sweep_table(
    rows: Sequence[tuple[str, Point, Mapping[str, float | None] | None]], sort_by: str
) -> str:
    """Markdown, one row per experiment (name, swept values, metrics), best `sort_by` first.

    A row's metrics are None when its run failed; such rows go last.
    """
    goal = METRIC_GOALS.get(sort_by)
    sign = -1.0 if goal == "higher" else 1.0

    def rank(row: tuple[str, Point, Mapping[str, float | None] | None]) -> tuple[int, float]:
        value = row[2].get(sort_by) if row[2] is not None else None
        return (0, sign * value) if value is not None else (1, math.inf)

    keys = list(rows[0][1]) if rows else []
    metric_names = list(METRIC_GOALS)
    header = ["experiment", *keys, *metric_names]
    table = []
    for name, point, metrics in sorted(rows, key=rank):
        cells = [name, *(point[key] for key in keys)]
        if metrics is None:
            cells += ["failed"] + [""] * (len(metric_names) - 1)
        else:
            cells += [_short(metrics.get(metric)) for metric in metric_names]
        table.append(cells)
    return "\n".join(markdown_table(header, table)) + "\n"


def _short(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"
