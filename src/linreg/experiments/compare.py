"""Compare the workspace with a git revision: `python -m linreg.experiments.compare --base main`.

Writes a report with the params that differ, every metric of both sides (six significant
digits; report.json holds every digit), a verdict per chosen metric (with a warning where the
test loss has not settled, or "not comparable" where the two revisions trained on different
data) and both revisions' curves: report.md (Mermaid charts and two PNGs),
summary.md (the same without the PNGs, for a pull request's comment), and report.html (one
self-contained page). `--fail-if` turns it into a CI gate. `make compare BASE=main
FAIL_IF='test_mae>+5%'` runs it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from linreg.core.errors import PipelineError
from linreg.core.evaluation import METRIC_GOALS, VERDICT_METRICS
from linreg.core.params import PlotParams
from linreg.core.records import Predictions, TrainLog
from linreg.experiments.report import (
    Report,
    check_gates,
    data_difference,
    metric_changes,
    param_changes,
    parse_gates,
    parse_metric_names,
    render_html,
    render_report,
)
from linreg.experiments.revisions import (
    dvc_json,
    fetch_base_artifacts,
    has_file,
    recorded_outputs,
    reproduce_workspace,
    resolve_revision,
)
from linreg.io.artifacts import read_predictions, read_train_log
from linreg.io.files import all_or_none, check_folder, write_bytes_atomic
from linreg.io.params import load_params
from linreg.io.pipeline import output_path
from linreg.runtime.cli import ArgumentParser, run

LOCK = "dvc.lock"  # DVC's record of each revision's outputs: git holds it


class Drawn(NamedTuple):
    """The two outputs of each revision that the comparison draws, by path."""

    train_log: str
    predictions: str


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m linreg.experiments.compare", description=__doc__)
    parser.add_argument("--base", default="main", help="git revision to compare with (main)")
    parser.add_argument(
        "--fail-if",
        default="",
        help=f"exit 1 when a metric moves past a bound: {VERDICT_METRICS[0]}>+5%%",
    )
    parser.add_argument(
        "--metrics", default=",".join(VERDICT_METRICS), help="metrics to give a verdict on"
    )
    parser.add_argument("--out", default="comparison", help="folder for the report and PNGs")
    parser.add_argument("--params", default="params.yaml", help="the workspace's params file")
    args = parser.parse_args(argv)

    # Every input is checked before any work: a bad one costs nothing and leaves nothing.
    plot_params = load_params(args.params).plot
    gates = parse_gates(args.fail_if, METRIC_GOALS)
    verdict_metrics = parse_metric_names("METRICS", args.metrics)
    base = resolve_revision(args.base)
    check_folder(args.out)
    # what it reads of each revision: the metrics (git-tracked), then the two outputs it draws
    metrics_file = output_path("evaluate", "metrics")
    drawn = Drawn(output_path("train", "train-log"), output_path("evaluate", "predictions"))
    for path in (LOCK, metrics_file):
        if not has_file(base, path):
            raise PipelineError(
                f"BASE = {args.base!r}: commit {base[:7]} has no {path}; "
                "compare with a revision whose pipeline was reproduced and committed"
            )

    reproduce_workspace()
    params = param_changes(dvc_json("params", "diff", base))
    metrics = metric_changes(dvc_json("metrics", "diff", base, "--all"), order=list(METRIC_GOALS))
    raw = output_path("generate", "out")
    base_raw, workspace_raw = (recorded_outputs(rev).get(raw) for rev in (base, None))
    other_data = data_difference(raw, base_raw, workspace_raw, params)
    out = Path(args.out)
    base_label = args.base if base.startswith(args.base) else f"{args.base} ({base[:7]})"
    with tempfile.TemporaryDirectory(prefix="linreg-base-") as base_dir:
        source = fetch_base_artifacts(base, drawn, Path(base_dir))
        sides = {base_label: Path(base_dir), "workspace": Path(".")}
        logs = {label: read_train_log(root / drawn.train_log) for label, root in sides.items()}
        predicted = {
            label: read_predictions(root / drawn.predictions) for label, root in sides.items()
        }
    report = Report(
        base_label,
        "workspace",
        params,
        metrics,
        verdict_metrics,
        logs,
        notes=[f"Base artifacts {source}."],
        other_data=other_data,
    )
    pictures = _draw(logs, predicted, plot_params)
    with all_or_none():
        for name, png in pictures.values():
            write_bytes_atomic(out / name, png)
        images = {title: name for title, (name, _) in pictures.items()}
        write_bytes_atomic(out / "report.md", render_report(report, images).encode())
        summary = replace(report, notes=[*report.notes, SUMMARY_NOTE])
        write_bytes_atomic(out / "summary.md", render_report(summary).encode())
        pages = {title: png for title, (_, png) in pictures.items()}
        write_bytes_atomic(out / "report.html", render_html(report, pages).encode())
        write_bytes_atomic(out / "report.json", json.dumps(report.values(), indent=2).encode())
    print(f"{report.base} → {report.workspace}")
    for name, said in report.verdicts():
        print(f"  {name}: {said}")
    print(f"wrote {out / 'report.md'}, its PNGs, report.html, report.json and summary.md in {out}/")

    if gates and other_data:
        print(f"FAIL_IF: not judged: {other_data}")
        return
    failures = check_gates(gates, metrics)
    if failures:
        raise PipelineError(f"FAIL_IF: {'; '.join(failures)}")


# summary.md is the report without its image links, for where relative links cannot show: a
# pull request's comment, a job summary (.github/workflows/pipeline.yml posts it to both).
SUMMARY_NOTE = (
    "The PNGs and a self-contained report.html lie beside this report in comparison/ (in CI: "
    "the comparison artifact)."
)


def _draw(
    logs: Mapping[str, TrainLog], predicted: Mapping[str, Predictions], params: PlotParams
) -> dict[str, tuple[str, bytes]]:
    """Both revisions' loss curves and predictions as PNGs: {title: (file name, bytes)}. Each
    mapping goes from a revision's label to its output, base first."""
    from linreg.core.plotting import render_png
    from linreg.experiments.figures import (  # matplotlib: once the inputs are known good
        loss_comparison_figure,
        predictions_comparison_figure,
    )

    figures = {
        "Loss curves": ("loss_curves.png", loss_comparison_figure(logs)),
        "Predictions": ("predictions.png", predictions_comparison_figure(predicted, params)),
    }
    return {
        title: (name, render_png(figure, params.dpi)) for title, (name, figure) in figures.items()
    }


if __name__ == "__main__":
    run(main)
