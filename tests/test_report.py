"""The comparison report: changes, verdicts, the gate, and the Markdown."""

from __future__ import annotations

import json
import math
import re

import matplotlib as mpl
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from harness.project import METRICS
from linreg.core.errors import PipelineError
from linreg.core.evaluation import METRIC_GOALS
from linreg.core.plotting import PICTURE_INCHES, render_png
from linreg.core.records import TrainLog
from linreg.experiments.report import (
    CHART_POINTS,
    REVISION_COLOURS,
    MetricChange,
    ParamChange,
    Report,
    chart_epochs,
    check_gates,
    data_difference,
    mermaid_loss_charts,
    metric_changes,
    param_changes,
    parse_gates,
    render_html,
    render_report,
    tail_oscillation,
    tail_swing,
)

from .browser import image_widths
from .helpers import ROOT, png_size

# What `dvc params diff BASE --json` and `dvc metrics diff BASE --all --json` print.
PARAMS_DIFF = {
    "params.yaml": {
        "train.lr": {"old": 0.01, "new": 0.1, "diff": 0.09000000000000001},
        "plot.dpi": {"old": 100, "new": 120, "diff": 20},
    }
}
METRICS_DIFF = {
    METRICS: {
        "test_r2": {"old": -1.030852044818876, "new": 0.8490633419463953, "diff": 1.88},
        "test_mae": {"old": 0.05687814950942993, "new": 0.015368884801864624, "diff": -0.04},
        "weight": {"old": 0.5784404277801514, "new": 0.6511904001235962, "diff": 0.07},
        "lstsq_test_mae": {"old": 1.1130894828070836e-08, "new": 1.1130894828070836e-08},
    }
}


def test_every_metric_of_the_pipeline_has_a_goal():
    committed = json.loads((ROOT / METRICS).read_text())
    assert list(committed) == list(METRIC_GOALS)


@pytest.mark.parametrize(
    ("name", "old", "new", "verdict"),
    [
        ("test_mae", 0.2, 0.1, "better"),
        ("test_mae", 0.1, 0.2, "worse"),
        ("test_r2", 0.5, 0.9, "better"),
        ("test_r2", 0.9, 0.5, "worse"),
        ("test_mae", 0.1, 0.1, "unchanged"),
        ("weight", 0.5, 0.6, "changed"),
        ("test_r2", None, 0.5, "not comparable"),
    ],
)
def test_verdict_follows_the_metrics_goal(name, old, new, verdict):
    assert MetricChange(name, old, new).verdict() == verdict


def test_change_is_absolute_and_relative_to_the_base():
    change = MetricChange("test_mae", 0.5, 0.25)
    assert change.diff == -0.25
    assert change.relative == -0.5
    assert MetricChange("test_mae", -2.0, -1.0).relative == 0.5  # relative to |old|
    assert MetricChange("test_mae", 0.0, 0.0).relative == 0.0
    assert MetricChange("test_mae", 0.0, 1e-9).relative == math.inf
    assert MetricChange("test_mae", None, 1.0).relative is None


def test_param_changes_are_sorted_with_both_values():
    changes = param_changes(PARAMS_DIFF)
    assert [(c.key, c.old, c.new) for c in changes] == [
        ("plot.dpi", 100, 120),
        ("train.lr", 0.01, 0.1),
    ]


def test_metric_changes_follow_the_metrics_file_order():
    changes = metric_changes(METRICS_DIFF, order=list(METRIC_GOALS))
    assert [c.name for c in changes] == ["test_mae", "test_r2", "weight", "lstsq_test_mae"]
    assert changes[0].old == 0.05687814950942993
    assert changes[0].diff == 0.015368884801864624 - 0.05687814950942993  # full precision


@pytest.mark.parametrize(
    ("text", "new", "fails"),
    [
        ("test_mae>+5%", 1.049, False),
        ("test_mae>+5%", 1.051, True),
        ("test_mae > 5 %", 1.051, True),
        ("test_mae>0", 1.0, False),
        ("test_mae>0", 1.0000001, True),
        ("test_mae>+0.1", 1.09, False),
        ("test_mae>+0.1", 1.11, True),
        ("test_mae>-100%", 0.5, True),  # impossible: would need the error to reach zero
        ("test_mae<-10%", 0.95, False),
        ("test_mae<-10%", 0.85, True),
        ("test_mae<-0.1", 0.85, True),
    ],
)
def test_gate_fails_past_its_bound(text, new, fails):
    (gate,) = parse_gates(text, METRIC_GOALS)
    failures = check_gates([gate], [MetricChange("test_mae", 1.0, new)])
    assert bool(failures) == fails
    if fails:
        assert failures[0].startswith(f"{text}: test_mae moved ")
        assert "\n" not in failures[0]


def test_several_gates_and_none():
    assert parse_gates("", METRIC_GOALS) == []
    gates = parse_gates("test_mae>+5%, test_r2<-0.01", METRIC_GOALS)
    assert [(g.metric, g.rises, g.amount, g.percent) for g in gates] == [
        ("test_mae", True, 5.0, True),
        ("test_r2", False, -0.01, False),
    ]


def test_a_gate_on_a_missing_value_fails():
    (gate,) = parse_gates("test_r2<-1%", METRIC_GOALS)
    (failure,) = check_gates([gate], [MetricChange("test_r2", None, 0.5)])
    assert "missing" in failure


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("test_mae>>5%", "expected METRIC>+AMOUNT or METRIC<-AMOUNT"),
        ("test_mae=5%", "expected METRIC>+AMOUNT"),
        ("test_mea>+5%", "unknown metric 'test_mea'; known: test_mae,"),
    ],
)
def test_bad_gates_are_one_line_errors(text, message):
    with pytest.raises(PipelineError, match=r"^FAIL_IF = ") as error:
        parse_gates(text, METRIC_GOALS)
    assert message in str(error.value)


def settling(tail: list[float]) -> TrainLog:
    """A train log of 100 epochs whose last 10 test losses swing between the values of
    `tail`, the last of them last."""
    test_loss = np.array([2.0] * 90 + tail * (10 // len(tail)))
    return TrainLog(np.arange(100), test_loss, test_loss)


def report(params=PARAMS_DIFF, tails=None, **fields) -> Report:
    """A report of the changes above; `tails`: each side's last test losses (settled: none)."""
    tails = tails or {"main (abc1234)": [1.0], "workspace": [1.0]}
    return Report(
        "main (abc1234)",
        "workspace",
        param_changes(params),
        metric_changes(METRICS_DIFF, order=list(METRIC_GOALS)),
        ["test_mae", "test_r2"],
        logs={label: settling(tail) for label, tail in tails.items()},
        **fields,
    )


def test_report_holds_verdicts_params_metrics_and_pictures():
    lines = render_report(
        report(notes=["Base artifacts read from the DVC cache or remote."]),
        {"Loss curves": "loss_curves.png"},
    ).splitlines()
    assert lines[0] == "# main (abc1234) → workspace"
    assert "- **test_mae**: better (0.0568781 → 0.0153689, -72.98%)" in lines
    assert "- **test_r2**: better (-1.03085 → 0.849063, +182.4%)" in lines
    assert "| param | main (abc1234) | workspace |" in lines
    assert "| train.lr | 0.01 | 0.1 |" in lines
    assert "| plot.dpi | 100 | 120 |" in lines
    assert "| test_mae | 0.0568781 | 0.0153689 | -0.0415093 | -72.98% |" in lines
    assert "| lstsq_test_mae | 1.11309e-08 | 1.11309e-08 | 0 | 0% |" in lines
    assert "![Loss curves](loss_curves.png)" in lines
    assert "_Base artifacts read from the DVC cache or remote._" in lines


def test_report_json_keeps_every_digit():
    values = report().values()
    mae = next(metric for metric in values["metrics"] if metric["name"] == "test_mae")
    assert (mae["old"], mae["new"]) == (0.05687814950942993, 0.015368884801864624)
    assert mae["diff"] == 0.015368884801864624 - 0.05687814950942993
    assert mae["verdict"] == "better"
    assert json.loads(json.dumps(values)) == values


def test_a_verdict_says_when_the_test_loss_has_not_settled():
    """The lesson with lr 0.1 falls into a two-state loop: its last epochs' test loss swings
    by more than the change judged, and the verdict says so; a settled run says nothing."""
    swinging = report(tails={"main (abc1234)": [1.001, 1.0], "workspace": [7.765, 1.0]})
    (mae, r2) = [line for line in render_report(swinging).splitlines() if line.startswith("- ")]
    warning = (
        "⚠ not settled: workspace's test loss swings 676.5% over its last 10 epochs, more than "
        "this change; the verdict may only say where the last epoch landed"
    )
    assert mae.endswith(warning)
    assert r2.endswith(warning)
    settled = render_report(report(tails={"main (abc1234)": [1.5, 1.0], "workspace": [1.5, 1.0]}))
    assert "not settled" not in settled  # 50 % < the 72.98 % change of test_mae


def test_on_other_data_every_verdict_is_not_comparable_and_says_why():
    params = [*param_changes(PARAMS_DIFF), ParamChange("generate.noise_std", 0.0, 0.1)]
    why = data_difference("data/raw.csv", "a" * 32, "b" * 32, params)
    assert why == (
        "the two sides trained and tested on different data (data/raw.csv differs: "
        "generate.noise_std 0 → 0.1)"
    )
    assert data_difference("data/raw.csv", "a" * 32, "a" * 32, params) is None
    other = report(other_data=why)
    verdicts = dict(other.verdicts())
    assert verdicts["test_mae"] == f"not comparable (0.0568781 → 0.0153689): {why}"
    assert {m["verdict"] for m in other.values()["metrics"]} == {"not comparable"}


def test_an_oscillation_is_movement_back_and_forth_not_a_steady_fall():
    assert tail_oscillation(np.linspace(1.0, 0.1, 100)) == pytest.approx(0, abs=1e-12)
    two_state = [1.0] * 90 + [0.119, 0.0154] * 5
    assert tail_oscillation(two_state) == pytest.approx(8 * (0.119 - 0.0154) / 0.0154)


def test_tail_swing_is_the_range_of_the_last_tenth_relative_to_the_last_epoch():
    two_state = [1.0] * 90 + [0.119, 0.0154] * 5
    swing, epochs = tail_swing(two_state)
    assert epochs == 10
    assert swing == pytest.approx((0.119 - 0.0154) / 0.0154)
    assert tail_swing([3.0, 2.0, 1.0]) == (1.0, 2)  # at least two epochs


def test_the_mermaid_charts_hold_the_train_logs_values():
    """log10 of the losses at chart_epochs on a numeric epoch axis; the shorter run's line goes
    on at its last value, and the title says so (tests/test_mermaid.py renders them)."""
    rng = np.random.default_rng(0)
    logs = {
        "main": TrainLog(np.arange(100), rng.random(100), rng.random(100)),
        "workspace": TrainLog(np.arange(250), rng.random(250), rng.random(250)),
    }
    blocks = "\n".join(mermaid_loss_charts(logs)).split("```mermaid\n")[1:]
    assert len(blocks) == 2
    shown = chart_epochs(250)
    assert (shown[0], shown[-1], len(shown)) == (0, 249, CHART_POINTS)
    for which, block in enumerate(blocks):
        assert f'"plotColorPalette": "{", ".join(REVISION_COLOURS)}"' in block
        assert 'x-axis "epoch" 0 --> 249' in block
        assert "main ends at epoch 99, flat after" in block
        lines = [json.loads(line) for line in re.findall(r"line (\[.*\])", block)]
        for (label, log), values in zip(logs.items(), lines, strict=True):
            losses = (log.train_loss, log.test_loss)[which]
            expected = [losses[min(epoch, len(losses) - 1)] for epoch in shown]
            np.testing.assert_allclose(np.power(10, values), expected, rtol=2e-5, err_msg=label)


def test_a_loss_that_is_not_positive_is_charted_as_it_is():
    log = TrainLog(np.arange(3), np.array([1.0, 0.5, 0.0]), np.array([1.0, 0.5, 0.25]))
    train, test = "\n".join(mermaid_loss_charts({"main": log})).split("```mermaid\n")[1:]
    assert 'y-axis "train loss"' in train
    assert "line [1, 0.5, 0]" in train
    assert 'y-axis "log10 of the test loss"' in test


def test_the_html_report_is_one_page_with_its_pictures_inside():
    page = render_html(report(), {"Loss curves": b"\x89PNG fake"})
    assert "data:image/png;base64,iVBORyBmYWtl" in page
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # nothing fetched
    assert "<td>train.lr</td><td>0.01</td><td>0.1</td>" in page


def test_the_html_reports_pictures_keep_their_size_and_readable_labels(chromium, line_figure):
    """Each PNG drawn at its natural width in a 1,400-pixel window: its tick labels (matplotlib's
    10 points at plot.dpi 100) stay about 14 pixels high, not the 7 of a half-width picture."""
    dpi = 100
    png = render_png(line_figure, dpi)
    widths = image_widths(chromium, render_html(report(), {"a": png, "b": png}))
    assert widths == [(png_size(png)[0], png_size(png)[0])] * 2
    tick_pixels = mpl.rcParams["font.size"] * dpi / 72 * widths[0][1] / widths[0][0]
    assert tick_pixels >= 11


NAMES = ["<script>alert(1)</script>", 'x"y', "a|b", "`code`", "*bold*", "two\nlines", "[a](b)"]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_cannot_rewrite_a_report(name):
    """A branch, a param's value or a metric's name shows as itself: no tag, no table cell, no
    end of a Mermaid string, no line of its own, in Markdown, Mermaid and HTML alike."""
    metrics = {"metrics.json": {"test_mae": {"old": 1.0, "new": 0.5}, name: {"old": 1, "new": 2}}}
    params = {"params.yaml": {"generate.source": {"old": "a.csv", "new": name}}}
    shown = Report(
        name, "workspace", param_changes(params), metric_changes(metrics), ["test_mae"],
        logs={name: settling([1.0]), "workspace": settling([1.0])},
    )  # fmt: skip
    markdown = render_report(shown)
    assert "<script" not in markdown
    assert "two\nlines" not in markdown
    lines = markdown.splitlines()
    assert lines[0].startswith("# ")
    assert lines[0].endswith(" → workspace")
    for row in (line for line in lines if line.startswith("| ")):
        assert len(re.findall(r"(?<!\\)\|", row)) == row.count(" | ") + 2  # no cell added
    for title in (line for line in lines if line.strip().startswith("title ")):
        assert re.fullmatch(r'\s*title "[^"]*"', title), title
    assert "<script" not in render_html(shown, {})


NAME_TEXT = st.text(alphabet=st.sampled_from(list('ab|"<>`*[]()&#\\\n _-')), max_size=12)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(base=NAME_TEXT, metric=NAME_TEXT, value=NAME_TEXT)
def test_no_name_rewrites_a_report(base, metric, value):
    """Fuzzed names through every part of a report: no tag, no table cell of their own, no end
    of a Mermaid string, no line of their own."""
    metrics = {"metrics.json": {"test_mae": {"old": 1.0, "new": 0.5}, metric: {"old": 1, "new": 2}}}
    params = {"params.yaml": {"generate.source": {"old": "a.csv", "new": value}}}
    shown = Report(
        base, "workspace", param_changes(params), metric_changes(metrics), ["test_mae"],
        logs={base: settling([1.0]), "workspace": settling([1.0])}, notes=[value],
    )  # fmt: skip
    markdown = render_report(shown)
    assert "<" not in markdown
    lines = markdown.splitlines()
    assert lines[0].endswith(" → workspace")
    width = None  # the unescaped | of the table's header: every row has as many
    for line in lines:
        pipes = len(re.findall(r"(?<!\\)\|", line)) if line.startswith("|") else None
        width = pipes and (width or pipes)
        assert pipes == width, line
    for title in (line for line in lines if line.strip().startswith("title ")):
        assert re.fullmatch(r'\s*title "[^"]*"', title), title
    assert "<script" not in render_html(shown, {})


def test_report_says_when_no_param_differs():
    assert "No param differs." in render_report(report(params={})).splitlines()


@pytest.fixture
def line_figure() -> Figure:
    """A picture of the comparison's size (core.plotting.PICTURE_INCHES)."""
    figure = Figure(figsize=PICTURE_INCHES)
    figure.add_subplot().plot([0, 1], [0, 1])
    return figure
