"""The comparison report: params and metrics of a base revision against the workspace, the
verdicts, the CI gate, and the Markdown that shows them. Pure: DVC's JSON in, text out."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from linreg.core.errors import PipelineError
from linreg.core.evaluation import METRIC_GOALS, VERDICT_METRICS


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
    """Full precision: the shortest text that reads back as the same float."""
    if value is None:
        return "—"
    return repr(value) if isinstance(value, float) else str(value)


def _percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.4g}%" if value else "0%"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a markdown table: the header, its rule, a line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_report(
    base: str,
    workspace: str,
    params: Sequence[ParamChange],
    metrics: Sequence[MetricChange],
    verdict_metrics: Sequence[str],
    images: Mapping[str, str],
    notes: Sequence[str] = (),
) -> str:
    """The Markdown report: verdicts, params that differ, every metric, the pictures."""
    by_name = {change.name: change for change in metrics}
    lines = [f"# {base} → {workspace}", "", "## Verdict", ""]
    for name in verdict_metrics:
        change = by_name[name]
        lines.append(
            f"- **{name}**: {change.verdict()} ({_number(change.old)} → {_number(change.new)}, "
            f"{_percent(change.relative)})"
        )
    lines += ["", "## Params", ""]
    if params:
        rows = ([p.key, _number(p.old), _number(p.new)] for p in params)
        lines += markdown_table(["param", base, workspace], rows)
    else:
        lines.append("No param differs.")
    lines += ["", "## Metrics", ""]
    rows = (
        [m.name, _number(m.old), _number(m.new), _number(m.diff), _percent(m.relative)]
        for m in metrics
    )
    lines += markdown_table(["metric", base, workspace, "change", "relative"], rows)
    lines += ["", "## Curves", ""]
    lines += [f"![{title}]({path})" for title, path in images.items()]
    if notes:
        lines += [""] + [f"_{note}_" for note in notes]
    return "\n".join(lines) + "\n"
