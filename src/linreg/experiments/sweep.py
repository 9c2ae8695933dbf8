"""Run a grid of DVC experiments and print one table:
`python -m linreg.experiments.sweep train.lr=0.001,0.1`.

Each point of the cross product is a `dvc exp run --temp`, one after another, in a temporary
copy of the workspace: the workspace, params.yaml and dvc.lock stay exactly as they were, and
the experiments stay in `dvc exp show`. `make sweep GRID='train.lr=0.001,0.01,0.1'` runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from linreg.core.errors import PipelineError
from linreg.core.evaluation import METRIC_GOALS, VERDICT_METRICS
from linreg.core.params import parse_value, with_overrides
from linreg.experiments.grid import (
    Point,
    SweepRow,
    experiment_name,
    grid_points,
    parse_grid,
    render_sweep_table,
)
from linreg.experiments.report import require_metric, tail_oscillation
from linreg.experiments.revisions import cache_path, experiments, resolve_revision, run_experiment
from linreg.io.artifacts import read_train_log
from linreg.io.files import write_bytes_atomic
from linreg.io.params import load_params
from linreg.io.pipeline import output_path
from linreg.runtime.cli import ArgumentParser, run

# The most experiments one sweep runs unless told otherwise (make sweep MAX_POINTS=...)
MAX_POINTS = 100


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m linreg.experiments.sweep", description=__doc__)
    parser.add_argument("grid", nargs="+", help="KEY=V1,V2,... (several keys: cross product)")
    parser.add_argument(
        "--sort-by", default=VERDICT_METRICS[0], help="metric to sort by, best first"
    )
    parser.add_argument(
        "--max-points",
        type=int,
        default=MAX_POINTS,
        help=f"the most experiments one sweep runs ({MAX_POINTS}): a typo is not a night's work",
    )
    parser.add_argument("--out", default="comparison/sweep.md", help="where to write the table")
    parser.add_argument("--params", default="params.yaml", help="the workspace's params file")
    args = parser.parse_args(argv)

    # Every point is validated before the first one runs: a typo costs nothing.
    require_metric("SORT", args.sort_by, args.sort_by)
    params = load_params(args.params)
    points = grid_points(parse_grid(args.grid))
    if len(points) > args.max_points:
        raise PipelineError(
            f"GRID: {len(points):,} points, and a sweep runs at most {args.max_points:,} "
            "(MAX_POINTS: make sweep MAX_POINTS=N, or --max-points N, to run more)"
        )
    for point in points:
        source = "GRID point " + ",".join(f"{key}={value}" for key, value in point.items())
        with_overrides(params, {key: parse_value(value) for key, value in point.items()}, source)

    baseline = resolve_revision("HEAD", key="the sweep's baseline")
    taken = set(experiments(baseline))
    ran: list[tuple[str, dict[str, str], bool]] = []
    for number, point in enumerate(points, start=1):
        name = experiment_name(point, taken)
        taken.add(name)
        print(f"sweep: experiment {number} of {len(points)}: {name}", file=sys.stderr)
        ran.append((name, point, run_experiment(name, point)))

    results = experiments(baseline)
    rows = [
        _row(name, point, results[name]) if ok else SweepRow(name, point, None)
        for name, point, ok in ran
    ]
    table = render_sweep_table(rows, args.sort_by)
    write_bytes_atomic(Path(args.out), table.encode())
    print(f"wrote {args.out}", file=sys.stderr)
    print(table, end="")
    failed = [name for name, _, ok in ran if not ok]
    if failed:
        raise PipelineError(f"{len(failed)} of {len(ran)} experiments failed: {', '.join(failed)}")


def _row(name: str, point: Point, shown: Mapping[str, object]) -> SweepRow:
    """An experiment's row from its `dvc exp show` row: its metrics (DVC gives a missing or
    null one as the text "None"), how its test loss ends (its train log, from the DVC cache)
    and the md5 of its raw data."""
    metrics = {
        metric: value if isinstance(value := shown.get(metric), float) else None
        for metric in METRIC_GOALS
    }
    log = read_train_log(cache_path(str(shown[output_path("train", "train-log")])))
    data = str(shown[output_path("generate", "out")])
    return SweepRow(name, point, metrics, tail_oscillation(log.test_loss), data)


if __name__ == "__main__":
    run(main)
