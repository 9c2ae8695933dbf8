"""A sweep's grid: KEY=V1,V2 specs, their cross product, experiment names and the results
table. Pure: text in, text out."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from linreg.core.errors import PipelineError
from linreg.core.evaluation import CONVERGED_GAP, METRIC_GOALS
from linreg.experiments.report import SETTLED_OSCILLATION, markdown_table

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


@dataclass(frozen=True)
class SweepRow:
    """One experiment of a sweep: what the table says of it."""

    name: str
    point: Point
    metrics: Mapping[str, float | None] | None  # None: the run failed
    oscillation: float = 0.0  # tail_oscillation of its test loss
    data: str = ""  # the md5 of the raw data it trained on

    @property
    def _unsettled(self) -> bool:
        return self.oscillation > SETTLED_OSCILLATION

    @property
    def _gap(self) -> float | None:
        """train_loss_gap where it is above CONVERGED_GAP (not converged), else None."""
        gap = self.metrics.get("train_loss_gap") if self.metrics is not None else None
        return gap if gap is not None and gap > CONVERGED_GAP else None

    def flags(self) -> list[str]:
        """What keeps its metrics from being trusted: the loss still swinging, training short
        of the best line (train_loss_gap)."""
        if self.metrics is None:
            return ["failed"]
        flags = [f"not settled (swings {self.oscillation:.0%})"] if self._unsettled else []
        return flags + ([f"not converged (gap {self._gap:.2g})"] if self._gap else [])

    def severity(self) -> int:
        """0 trusted, 1 not converged, 2 not settled, 3 failed: the table's order before the
        metric's."""
        if self.metrics is None:
            return 3
        return 2 if self._unsettled else 1 if self._gap else 0


def render_sweep_table(rows: Sequence[SweepRow], sort_by: str) -> str:
    """Markdown, one row per experiment (name, swept values, what is flagged, metrics), best
    `sort_by` first among the rows with the same flags: a flagged row never ranks above one
    that is not, a failed one goes last. Rows that trained on different data are not
    comparable: each ranks among the rows of its data, and a line under the table says so."""
    goal = METRIC_GOALS.get(sort_by)
    sign = -1.0 if goal == "higher" else 1.0
    data_sets = list(dict.fromkeys(row.data for row in rows))

    def rank(row: SweepRow) -> tuple[int, int, float]:
        value = row.metrics.get(sort_by) if row.metrics is not None else None
        order = sign * value if value is not None else math.inf
        return data_sets.index(row.data), row.severity(), order

    keys = list(rows[0].point) if rows else []
    metric_names = list(METRIC_GOALS)
    several = len(data_sets) > 1
    header = ["experiment", *keys, *(["data"] if several else []), "flags", *metric_names]
    table = []
    for row in sorted(rows, key=rank):
        cells = [row.name, *(row.point[key] for key in keys), *([row.data[:7]] if several else [])]
        cells.append(", ".join(row.flags()) or "—")
        metrics = row.metrics or {}
        cells += [_short(metrics.get(metric)) for metric in metric_names]
        table.append(cells)
    lines = markdown_table(header, table)
    if several:
        lines += ["", "Not comparable: the experiments trained and tested on different data (the "
                  "column data: the md5 of each one's raw data); each ranks among those of its "
                  "data."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _short(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"
