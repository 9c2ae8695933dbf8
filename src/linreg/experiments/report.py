"""The comparison report: params and metrics of a base revision against the workspace, the
verdicts, the CI gate, and the Markdown that shows them. Pure: DVC's JSON in, text out."""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linreg.core.errors import PipelineError
from linreg.core.evaluation import METRIC_GOALS, VERDICT_METRICS
from linreg.core.records import TrainLog


@dataclass(frozen=True)
class ParamChange:
    key: str  # dotted, as `dvc params diff` names it: train.lr
    old: Any  # None when the base lacks the key
    new: Any  # None when the workspace lacks it


@dataclass(frozen=True)
class MetricChange:
    name: str
    old: float | None  # None: missing (or undefined, like R² of a constant y) on that side
    new: float | None

    @property
    def diff(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    @property
    def relative(self) -> float | None:
        """(new - old) / |old|: 0 when equal, ±inf when only the base is 0."""
        diff = self.diff
        if diff is None or self.old is None:
            return None
        if diff == 0:
            return 0.0
        return diff / abs(self.old) if self.old != 0 else math.copysign(math.inf, diff)

    def verdict(self) -> str:
        """better, worse or unchanged by the metric's goal; changed when it has none."""
        diff = self.diff
        if diff is None:
            return "not comparable"
        if diff == 0:
            return "unchanged"
        goal = METRIC_GOALS.get(self.name)
        if goal is None:
            return "changed"
        return "better" if (diff < 0) == (goal == "lower") else "worse"


def param_changes(params_diff: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[ParamChange]:
    """`dvc params diff --json` -> one change per differing key, sorted by key."""
    changes = [
        ParamChange(key, change.get("old"), change.get("new"))
        for keys in params_diff.values()
        for key, change in keys.items()
    ]
    return sorted(changes, key=lambda change: change.key)


def metric_changes(
    metrics_diff: Mapping[str, Mapping[str, Mapping[str, Any]]], order: Sequence[str] = ()
) -> list[MetricChange]:
    """`dvc metrics diff --all --json` -> one change per metric, in `order`, then by name."""
    changes = {
        name: MetricChange(name, change.get("old"), change.get("new"))
        for metrics in metrics_diff.values()
        for name, change in metrics.items()
    }
    rank = {name: index for index, name in enumerate(order)}
    return [changes[name] for name in sorted(changes, key=lambda n: (rank.get(n, len(rank)), n))]


def data_difference(
    raw: str, base_md5: str | None, workspace_md5: str | None, params: Sequence[ParamChange]
) -> str | None:
    """Why the two sides' metrics are not comparable, or None: they trained and tested on
    different data when the raw data's md5 in their dvc.lock differ (`raw`: its path)."""
    if base_md5 == workspace_md5:
        return None
    changed = [
        f"{p.key} {_number(p.old)} → {_number(p.new)}"
        for p in params
        if p.key.startswith("generate.")
    ]
    because = "; ".join(changed) or "the same generate params, another file"
    return f"the two sides trained and tested on different data ({raw} differs: {because})"


@dataclass(frozen=True)
class Gate:
    """Fail when a metric moves past a bound: test_mae>+5% (rises by more than 5 % of the base)
    or test_r2<-0.01 (falls by more than 0.01)."""

    text: str
    metric: str
    rises: bool  # '>': fail on a rise above the bound; '<': on a fall below it
    amount: float  # signed, as written
    percent: bool

    def failure(self, change: MetricChange) -> str | None:
        """None when the change is within the bound, else one line saying why not."""
        moved = change.relative if self.percent else change.diff
        if moved is None:
            return f"{self.text}: {self.metric} is missing on one side, so it cannot be checked"
        bound = self.amount / 100 if self.percent else self.amount
        if (moved <= bound) if self.rises else (moved >= bound):
            return None
        shown = _percent(moved) if self.percent else f"{moved:+.6g}"
        return (
            f"{self.text}: {self.metric} moved {shown} "
            f"({_number(change.old)} -> {_number(change.new)})"
        )


_GATE = re.compile(r"^\s*(?P<metric>\w+)\s*(?P<op>[<>])\s*(?P<amount>[-+]?[0-9.]+(?:e[-+]?\d+)?)"
                   r"\s*(?P<percent>%?)\s*$", re.IGNORECASE)  # fmt: skip


def parse_gates(text: str, metrics: Iterable[str]) -> list[Gate]:
    """Comma-separated bounds like 'test_mae>+5%,test_r2<-0.01'; an empty text has none."""
    known = list(metrics)
    gates = []
    for part in filter(None, (part.strip() for part in text.split(","))):
        match = _GATE.match(part)
        if match is None:
            raise PipelineError(
                f"FAIL_IF = {part!r}: expected METRIC>+AMOUNT or METRIC<-AMOUNT, "
                f"with % for a change relative to the base, e.g. {VERDICT_METRICS[0]}>+5%"
            )
        require_metric("FAIL_IF", part, match["metric"], known)
        rises, amount, percent = match["op"] == ">", float(match["amount"]), bool(match["percent"])
        gates.append(Gate(part, match["metric"], rises, amount, percent))
    return gates


def require_metric(option: str, text: str, name: str, known: Iterable[str] = METRIC_GOALS) -> None:
    """A one-line error naming the option and its text when `name` is no known metric."""
    known = list(known)
    if name not in known:
        raise PipelineError(
            f"{option} = {text!r}: unknown metric {name!r}; known: {', '.join(known)}"
        )


def parse_metric_names(option: str, text: str) -> list[str]:
    """'test_mae,test_r2' -> the metric names, each checked."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        require_metric(option, text, name)
    return names


def check_gates(gates: Sequence[Gate], changes: Sequence[MetricChange]) -> list[str]:
    """The failure line of every gate its metric's change breaks."""
    by_name = {change.name: change for change in changes}
    failures = (gate.failure(by_name[gate.metric]) for gate in gates)
    return [failure for failure in failures if failure is not None]


def _number(value: Any) -> str:
    """Six significant digits, as a reader compares them (report.json holds every digit)."""
    if value is None:
        return "—"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.4g}%" if value else "0%"


# What Markdown would read as markup in a line or a table cell (GitHub's flavour)
_MARKDOWN = re.compile(r"([\\`*|\[\]])")


def escaped(text: object, language: str) -> str:
    """`text` (a revision's label, a param's key or value, a metric's name: anything a branch,
    a column or a file may name) shown as it is in `language`: "markdown" (a line or a table
    cell: no tag, no cell or emphasis of its own), "mermaid" (inside a quoted string: no quote
    ends it) or "html". Every report writes every such text through here; a line break is a
    space in each."""
    flat = " ".join(str(text).splitlines())
    if language == "html":
        return html.escape(flat)
    if language == "mermaid":  # its own entity codes: #quot; cannot end the string
        return (
            flat.replace("#", "#35;")
            .replace('"', "#quot;")
            .replace("<", "#lt;")
            .replace(">", "#gt;")
        )
    return _MARKDOWN.sub(r"\\\1", html.escape(flat, quote=False))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a markdown table: the header, its rule, a line per row; every cell
    escaped."""
    cells = [[escaped(cell, "markdown") for cell in row] for row in [header, *rows]]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return lines


# The share of the last epochs whose test loss says whether training has settled.
TAIL_SHARE = 0.1


def tail_swing(test_loss: np.ndarray) -> tuple[float, int]:
    """How far the test loss moves over the last TAIL_SHARE of the epochs (at least 2): its
    range relative to the last epoch's, and how many epochs that is."""
    tail = np.asarray(test_loss, np.float64)[-max(2, math.ceil(len(test_loss) * TAIL_SHARE)) :]
    last = abs(float(tail[-1]))
    return (float(tail.max() - tail.min()) / last if last else math.inf), len(tail)


# A test loss that goes back and forth by more than this (relative to its last value) over the
# last epochs has not settled: a sweep flags it (the lesson at train.lr 0.1 swings by 676 %).
SETTLED_OSCILLATION = 0.01


def tail_oscillation(test_loss: np.ndarray) -> float:
    """How much the test loss goes back and forth over the last TAIL_SHARE of the epochs (at
    least 3): its total movement less its net change, relative to the last epoch's value; 0
    for a curve that only falls (or only rises), however fast."""
    tail = np.asarray(test_loss, np.float64)[-max(3, math.ceil(len(test_loss) * TAIL_SHARE)) :]
    moved = float(np.sum(np.abs(np.diff(tail))) - abs(tail[-1] - tail[0]))
    last = abs(float(tail[-1]))
    return moved / last if last else (math.inf if moved else 0.0)


def unsettled_note(change: MetricChange, swings: Mapping[str, tuple[float, int]]) -> str | None:
    """A warning for the verdict on `change` when a side's test loss swings over its last
    epochs by more than the change judged: the verdict may only say where the last epoch
    landed. `swings`: tail_swing of each side's test loss, by the side's label."""
    relative = change.relative
    if relative is None or change.verdict() == "unchanged":
        return None
    wide = {label: swing for label, swing in swings.items() if swing[0] > abs(relative)}
    if not wide:
        return None
    swung = "; ".join(
        f"{label}'s test loss swings {_percent(swing)[1:]} over its last {epochs} epochs"
        for label, (swing, epochs) in wide.items()
    )
    return (
        f"not settled: {swung}, more than this change; the verdict may only say where the "
        "last epoch landed"
    )


# At most this many epochs of each loss curve in the Mermaid charts that GitHub draws: every
# epoch of the lesson's 100 (a sample of every other epoch would hide a two-state loop).
CHART_POINTS = 100
# Each revision's colour, base first, in the Mermaid charts and the comparison's PNGs alike,
# with the names the charts' titles give them: both at least 3:1 against white (WCAG's
# contrast for graphics; matplotlib's tab:orange has 2.5).
REVISION_COLOURS = {"#d95f02": "orange", "#1f77b4": "blue"}


def chart_epochs(epochs: int) -> list[int]:
    """The epochs a chart shows: every one up to CHART_POINTS, else CHART_POINTS evenly spread
    from the first to the last (Mermaid spreads a line's values evenly over the x axis)."""
    if epochs <= CHART_POINTS:
        return list(range(epochs))
    return sorted({round(i * (epochs - 1) / (CHART_POINTS - 1)) for i in range(CHART_POINTS)})


def mermaid_loss_charts(logs: Mapping[str, TrainLog]) -> list[str]:
    """Mermaid xychart blocks, one for the train loss and one for the test loss, a line per
    side in its colour (REVISION_COLOURS, set by Mermaid's init directive and named in the
    title); `logs` maps each side's label (base first) to its train log. The x axis is the
    epoch, numeric; the y axis log10 of the loss, the scale of the PNGs' log axis (Mermaid has
    no log axis), or the loss itself where one is not positive. Values to six significant
    digits of what the train logs hold (or of their log10)."""
    epochs = max(len(log.epoch) for log in logs.values())
    shown = chart_epochs(epochs)
    palette = ", ".join(REVISION_COLOURS)
    named = ", ".join(
        f"{colour}: {escaped(label, 'mermaid')}"
        for label, colour in zip(logs, REVISION_COLOURS.values(), strict=False)
    )
    # Mermaid spreads every line over the whole x axis: a shorter run's line goes on flat from
    # its last epoch, and the title says so
    shorter = "".join(
        f"; {escaped(label, 'mermaid')} ends at epoch {len(log.epoch) - 1}, flat after"
        for label, log in logs.items()
        if len(log.epoch) < epochs
    )
    blocks = []
    for column, name in (("train_loss", "Train loss"), ("test_loss", "Test loss")):
        series = [
            getattr(log, column)[np.minimum(shown, len(log.epoch) - 1)] for log in logs.values()
        ]
        logarithmic = all(bool(np.all(values > 0)) for values in series)
        lines = [
            "```mermaid",
            '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + palette + '"}}}}%%',
            "xychart-beta",
            f'    title "{name} per epoch{", log10" if logarithmic else ""} ({named}{shorter})"',
            f'    x-axis "epoch" 0 --> {epochs - 1}',
            f'    y-axis "{"log10 of the " + name.lower() if logarithmic else name.lower()}"',
        ]
        for values in series:
            shown_values = np.log10(values.astype(np.float64)) if logarithmic else values
            lines.append(f"    line [{', '.join(f'{v:.6g}' for v in shown_values)}]")
        blocks += [*lines, "```", ""]
    return blocks


@dataclass(frozen=True)
class Report:
    """What a comparison says, before it is Markdown or HTML."""

    base: str
    workspace: str
    params: Sequence[ParamChange]
    metrics: Sequence[MetricChange]
    verdict_metrics: Sequence[str]
    logs: Mapping[str, TrainLog]  # each side's train log, by its label, base first
    notes: Sequence[str] = ()
    other_data: str | None = None  # why the sides' data differ; None: the same data

    def verdicts(self) -> list[tuple[str, str]]:
        """(metric, what is said of it) for each verdict metric: better, worse, ... or, where
        the two sides trained and tested on different data, not comparable and why."""
        by_name = {change.name: change for change in self.metrics}
        swings = {label: tail_swing(log.test_loss) for label, log in self.logs.items()}
        said = []
        for name in self.verdict_metrics:
            change = by_name[name]
            values = f"{_number(change.old)} → {_number(change.new)}"
            if self.other_data:
                said.append((name, f"not comparable ({values}): {self.other_data}"))
                continue
            text = f"{change.verdict()} ({values}, {_percent(change.relative)})"
            note = unsettled_note(change, swings)
            said.append((name, f"{text}; ⚠ {note}" if note else text))
        return said

    def params_table(self) -> tuple[list[str], list[list[str]]]:
        rows = [[p.key, _number(p.old), _number(p.new)] for p in self.params]
        return ["param", self.base, self.workspace], rows

    def metrics_table(self) -> tuple[list[str], list[list[str]]]:
        header = ["metric", self.base, self.workspace, "change", "relative"]
        rows = [
            [m.name, _number(m.old), _number(m.new), _number(m.diff), _percent(m.relative)]
            for m in self.metrics
        ]
        return header, rows

    def values(self) -> dict[str, Any]:
        """Every number at full precision (report.json)."""
        return {
            "base": self.base,
            "workspace": self.workspace,
            "params": [vars(change) for change in self.params],
            "metrics": [
                vars(change) | {"diff": change.diff, "relative": change.relative,
                                "verdict": "not comparable" if self.other_data
                                else change.verdict()}
                for change in self.metrics
            ],
            "other_data": self.other_data,
        }  # fmt: skip


def render_report(report: Report, images: Mapping[str, str] | None = None) -> str:
    """The Markdown report: verdicts, params that differ, every metric, the loss curves as
    Mermaid charts (GitHub draws them in a comment or a job summary) and, where `images` maps
    titles to the PNGs' relative paths, the pictures."""
    title = f"{escaped(report.base, 'markdown')} → {escaped(report.workspace, 'markdown')}"
    lines = [f"# {title}", "", "## Verdict", ""]
    lines += [
        f"- **{escaped(name, 'markdown')}**: {escaped(text, 'markdown')}"
        for name, text in report.verdicts()
    ]
    lines += ["", "## Params", ""]
    header, rows = report.params_table()
    lines += markdown_table(header, rows) if rows else ["No param differs."]
    lines += ["", "## Metrics", "", *markdown_table(*report.metrics_table())]
    lines += ["", "## Curves", "", *mermaid_loss_charts(report.logs)]
    lines += [f"![{title}]({path})" for title, path in (images or {}).items()]
    for note in report.notes:
        lines += ["", f"_{escaped(note, 'markdown')}_"]
    return "\n".join(lines) + "\n"


def render_html(report: Report, images: Mapping[str, bytes]) -> str:
    """The same report as one self-contained HTML page: `images` (title -> PNG bytes) inside it,
    nothing fetched."""

    def text(value: object) -> str:
        return escaped(value, "html")

    def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
        head = "".join(f"<th>{text(cell)}</th>" for cell in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{text(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    header, rows = report.params_table()
    parts = [
        f"<h1>{text(report.base)} → {text(report.workspace)}</h1>",
        "<h2>Verdict</h2><ul>",
        *(f"<li><b>{text(name)}</b>: {text(said)}</li>" for name, said in report.verdicts()),
        "</ul><h2>Params</h2>",
        table(header, rows) if rows else "<p>No param differs.</p>",
        "<h2>Metrics</h2>",
        table(*report.metrics_table()),
        "<h2>Curves</h2>",
        *(
            f'<figure><img alt="{text(title)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode()}"><figcaption>{text(title)}</figcaption></figure>'
            for title, png in images.items()
        ),
        *(f"<p><i>{text(note)}</i></p>" for note in report.notes),
    ]
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{text(report.base)} → {text(report.workspace)}</title>\n<style>{_STYLE}</style>\n"
        "</head>\n<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


# Each PNG at its natural size, one a row: shrunk to half a page, its tick labels were 7 px
_STYLE = (
    "body { font-family: sans-serif; margin: 24px; } "
    "table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px; "
    "text-align: right; } td:first-child, th:first-child { text-align: left; } "
    "figure { margin: 0 0 24px; } img { display: block; max-width: none; }"
)
