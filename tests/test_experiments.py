"""Comparing the workspace with a git revision, and sweeps: real git, real DVC, as users run
`make compare` and `make sweep`."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from harness.project import METRICS, TRAIN_LOG
from linreg.core.evaluation import METRIC_GOALS
from linreg.core.records import TrainLog
from linreg.experiments.report import REVISION_COLOURS, chart_epochs
from linreg.io.artifacts import read_train_log

from .browser import mermaid_charts
from .helpers import ROOT, artifact_bytes, png_size, run, set_param

pytestmark = pytest.mark.slow

WROTE = (
    "wrote comparison/report.md, its PNGs, report.html, report.json and summary.md in comparison/\n"
)


def printed(project: Path) -> str:
    """What compare prints: the report's title and verdict lines, then where it wrote."""
    report = (project / "comparison/report.md").read_text()
    title = report.splitlines()[0].removeprefix("# ")
    verdicts = report.split("## Verdict\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    said = [line.removeprefix("- **").replace("**: ", ": ", 1) for line in verdicts]
    return title + "\n" + "".join(f"  {line}\n" for line in said) + WROTE


def read_csv_bytes(data: bytes) -> TrainLog:
    """A train log from its bytes (main's, as the fixture kept them)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train_log.csv"
        path.write_bytes(data)
        return read_train_log(path)


def compare(project: Path, *args: str, check: bool = True, tmp: Path | None = None):
    env = {"TMPDIR": str(tmp)} if tmp else None
    return run(
        project, sys.executable, "-m", "linreg.experiments.compare", *args, check=check, env=env
    )


def sweep(project: Path, *args: str, check: bool = True):
    return run(project, sys.executable, "-m", "linreg.experiments.sweep", *args, check=check)


def section(report: str, title: str) -> dict[str, list[str]]:
    """The table under `## title`, as {first cell: the other cells}."""
    lines = report.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].splitlines()
    rows = [line.strip("|").split("|") for line in lines if line.startswith("| ")][1:]
    return {cells[0].strip(): [cell.strip() for cell in cells[1:]] for cells in rows}


def cache_files(project: Path) -> list[str]:
    cache = project / ".dvc/cache"
    return sorted(str(path.relative_to(cache)) for path in cache.rglob("*") if path.is_file())


def state(project: Path) -> tuple[str, str, list[str]]:
    """What a comparison must leave as it found it: git's view, its worktrees, the DVC cache."""
    return (
        run(project, "git", "status", "--porcelain").stdout,
        run(project, "git", "worktree", "list").stdout,
        cache_files(project),
    )


def committed_metrics(project: Path, rev: str) -> dict[str, float]:
    return json.loads(run(project, "git", "show", f"{rev}:reports/metrics.json").stdout)


def colour_pixels(png: Path, colour: str) -> int:
    pixels = imread(png)[..., :3]
    return int(np.sum(np.all(np.abs(pixels - to_rgb(colour)) < 0.02, axis=-1)))


@pytest.fixture
def changed(project: Path) -> tuple[Path, dict[str, bytes]]:
    """On a branch, train.lr and plot.dpi changed (not yet reproduced); and main's artifacts."""
    base = artifact_bytes(project)
    run(project, "git", "checkout", "-q", "-b", "change")
    set_param(project, "train.lr", 0.1)
    set_param(project, "plot.dpi", 120)
    return project, base


def test_compare_with_an_empty_cache_reproduces_the_base_and_leaves_nothing(changed, tmp_path):
    project, _ = changed
    shutil.rmtree(project / ".dvc/cache")
    run(project, "dvc", "repro")  # the workspace side, as CI has it before comparing
    before = state(project)
    tmp = tmp_path / "tmp"
    tmp.mkdir()

    result = compare(project, "--base", "main", tmp=tmp)

    assert result.stdout == printed(project)
    report = (project / "comparison/report.md").read_text()
    assert "_Base artifacts reproduced in a temporary git worktree" in report
    assert section(report, "Params") == {"plot.dpi": ["100", "120"], "train.lr": ["0.01", "0.1"]}

    old, new = (
        committed_metrics(project, "main"),
        json.loads((project / METRICS).read_text()),
    )
    metrics = section(report, "Metrics")
    assert list(metrics) == list(METRIC_GOALS)
    mae, new_mae = old["test_mae"], new["test_mae"]
    assert new_mae != mae
    assert metrics["test_mae"] == [
        f"{mae:.6g}",
        f"{new_mae:.6g}",
        f"{new_mae - mae:.6g}",
        f"{(new_mae - mae) / mae * 100:+.4g}%",
    ]
    verdict = "better" if new_mae < mae else "worse"
    assert f"- **test_mae**: {verdict} ({mae:.6g} → {new_mae:.6g}, " in report
    # lr 0.1 falls into a two-state loop: the verdict says it may be where the last epoch landed
    assert "⚠ not settled: workspace's test loss swings" in report
    full = json.loads((project / "comparison/report.json").read_text())
    assert {m["name"]: (m["old"], m["new"]) for m in full["metrics"]}["test_mae"] == (mae, new_mae)
    html = (project / "comparison/report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 2

    # what the workflow posts to the pull request and the job summary: the same tables, no
    # image link (its Mermaid charts: test_the_comments_charts_read_at_a_glance)
    summary = (project / "comparison/summary.md").read_text()
    assert section(summary, "Metrics") == metrics
    assert "![" not in summary

    # The base's curves are main's own artifacts, rebuilt byte for byte (compare checks them
    # against main's dvc.lock), read from a temporary folder that is gone now.
    assert not (project / "comparison/base").exists()
    # Both PNGs, at the workspace's dpi, hold both revisions' colours.
    loss, predictions = (
        project / "comparison/loss_curves.png",
        project / "comparison/predictions.png",
    )
    assert png_size(loss.read_bytes()) == png_size(predictions.read_bytes()) == (1200, 840)
    for png in (loss, predictions):
        for colour in REVISION_COLOURS:  # main's, then the workspace's
            assert colour_pixels(png, colour) > 200, (png, colour)
    assert "![Loss curves](loss_curves.png)" in report

    assert state(project) == before  # no worktree, nothing new in the cache, git clean as was
    # The temporary worktree is gone; torch keeps a compile cache folder of its own there.
    assert [p.name for p in tmp.iterdir() if not p.name.startswith("torchinductor_")] == []


def test_compare_uses_the_cache_and_gates(changed):
    project, _ = changed
    run(project, "dvc", "repro")

    compare(project, "--base", "main", "--fail-if", "test_mae>+5%")  # lr 0.1 lowers test_mae
    report = (project / "comparison/report.md").read_text()
    assert "_Base artifacts read from the DVC cache or remote._" in report

    failed = compare(project, "--base", "main", "--fail-if", "test_mae>-100%", check=False)
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1].startswith(
        "error: FAIL_IF: test_mae>-100%: test_mae moved -"
    )
    assert failed.stdout == printed(project)


def test_compare_across_other_data_is_not_comparable_and_the_gate_does_not_judge(project):
    run(project, "git", "checkout", "-q", "-b", "noisy")
    set_param(project, "generate.noise_std", 0.1)

    result = compare(project, "--base", "main", "--fail-if", "test_mae>+5%")

    why = (
        "the two sides trained and tested on different data (data/raw.csv differs: "
        "generate.noise_std 0 → 0.1)"
    )
    assert "  test_mae: not comparable (0.0568781 → " in result.stdout
    assert result.stdout == printed(project) + f"FAIL_IF: not judged: {why}\n"
    assert result.stderr == "compare: dvc repro (the workspace)\n"  # DVC's own chatter stays out


def contrast_with_white(colour: str) -> float:
    """WCAG's contrast ratio of a #rrggbb colour against white."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def test_the_comments_charts_read_at_a_glance(chromium, changed, tmp_path):
    """summary.md's Mermaid, drawn by mermaid itself at a GitHub comment's width: a handful of
    epoch labels, each revision in its own colour that stands out on white, and the lines
    where the train logs put them (log10 of the loss)."""
    project, base = changed
    run(project, "dvc", "repro")
    compare(project, "--base", "main")
    summary = (project / "comparison/summary.md").read_text()
    charts = mermaid_charts(chromium, summary, tmp_path / "charts.png")

    logs = [read_csv_bytes(base[TRAIN_LOG]), read_train_log(project / TRAIN_LOG)]
    shown = chart_epochs(len(logs[0].epoch))
    assert len(charts) == 2
    for chart, column in zip(charts, ("train_loss", "test_loss"), strict=True):
        assert 3 <= len(chart.x_ticks) <= 12, chart.x_ticks
        assert [colour for colour, _ in chart.lines] == list(REVISION_COLOURS)
        assert all(contrast_with_white(colour) >= 3 for colour in REVISION_COLOURS)
        span = chart.y_ticks[0][0] - chart.y_ticks[-1][0]
        for (_, points), log in zip(chart.lines, logs, strict=True):
            drawn = chart.values(points)
            expected = np.log10(getattr(log, column)[shown])
            np.testing.assert_allclose([x for x, _ in drawn], shown, atol=0.5)
            np.testing.assert_allclose([y for _, y in drawn], expected, atol=abs(span) / 100)


def test_compare_refuses_a_corrupt_cached_base(changed):
    """DVC notices a changed byte in its cache; the comparison must too, not draw it."""
    project, _ = changed
    run(project, "dvc", "repro")
    lock = yaml.safe_load(run(project, "git", "show", "main:dvc.lock").stdout)
    md5 = next(out["md5"] for out in lock["stages"]["train"]["outs"] if out["path"] == TRAIN_LOG)
    cached = project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    data = bytearray(cached.read_bytes())
    data[data.index(b"0.31")] = ord("9")  # epoch 0's train loss 0.31... becomes 9.31...
    cached.chmod(0o644)
    cached.write_bytes(bytes(data))

    result = compare(project, "--base", "main", check=False)

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] + "\n" == (
        f"error: reports/train_log.csv of {lock_commit(project)}: the copy in the DVC cache (or "
        f"remote) is corrupt: md5 {hashlib.md5(data).hexdigest()}, dvc.lock records {md5}; "
        f"delete {cached.resolve()} and run again to fetch or rebuild it\n"
    )
    assert not (project / "comparison/report.md").exists()
    # as the line says, without that file the base is rebuilt: the empty-cache test above


def lock_commit(project: Path) -> str:
    return run(project, "git", "rev-parse", "--short=7", "main").stdout.strip()


def test_compare_reads_the_base_from_a_remote(changed, tmp_path):
    project, _ = changed
    run(project, "dvc", "remote", "add", "--default", "store", str(tmp_path / "remote"))
    run(project, "dvc", "push")  # main's artifacts: the workspace is not reproduced yet
    shutil.rmtree(project / ".dvc/cache")
    run(project, "dvc", "repro")
    before = state(project)

    compare(project, "--base", "main")

    report = (project / "comparison/report.md").read_text()
    assert "_Base artifacts read from the DVC cache or remote._" in report
    assert state(project) == before


@pytest.mark.parametrize(
    ("args", "params_text", "message"),
    [
        (["--base", "nope"], None, "error: BASE = 'nope': no such branch, tag or commit"),
        (["--base", "main~1"], None, "error: BASE = 'main~1': commit "),
        ([], "train: [\n", "error: params.yaml: invalid YAML at line 2"),
        (["--metrics", "test_mea"], None, "error: METRICS = 'test_mea': unknown metric"),
        (["--fail-if", "test_mae>>1"], None, "error: FAIL_IF = 'test_mae>>1': expected"),
        (["--out", "params.yaml/comparison"], None, "error: params.yaml: a file, where a folder"),
    ],
)
def test_compare_refuses_bad_input_in_one_line_leaving_nothing(project, args, params_text, message):
    if params_text is not None:
        (project / "params.yaml").write_text(params_text)
    before = state(project)

    result = compare(project, *args, check=False)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [result.stderr.splitlines()[0]]
    assert result.stderr.startswith(message)
    assert not (project / "comparison").exists()
    assert state(project) == before


def experiment_names(project: Path) -> set[str]:
    shown = json.loads(run(project, "dvc", "exp", "show", "--json").stdout)
    return {
        rev["name"]
        for entry in shown
        for experiment in entry.get("experiments") or ()
        for rev in experiment["revs"]
    }


def test_sweep_runs_each_point_as_an_experiment_and_leaves_the_workspace(project):
    # The experiments' outputs go to the DVC cache (so that `dvc exp apply` works); the rest stays.
    before = artifact_bytes(project), state(project)[:2], (project / "dvc.lock").read_bytes()

    result = sweep(project, "train.lr=0.001,0.01,0.1")

    table = result.stdout
    assert (project / "comparison/sweep.md").read_text() == table
    header, _, *rows = table.splitlines()
    assert header.startswith("| experiment | train.lr | flags | test_mae |")
    cells = [row.strip("|").split("|") for row in rows]
    names = [cell[0].strip() for cell in cells]
    assert sorted(names) == ["train.lr=0.001", "train.lr=0.01", "train.lr=0.1"]
    flags, maes = [cell[2].strip() for cell in cells], [float(cell[3]) for cell in cells]
    assert len(set(maes)) == 3
    # lr 0.1 falls into a two-state loop: the lowest test MAE, flagged and ranked last
    assert (names[-1], min(maes)) == ("train.lr=0.1", maes[-1])
    assert flags[-1].startswith("not settled (swings ")
    assert maes[:-1] == sorted(maes[:-1])  # best test_mae first among the others
    assert experiment_names(project) == set(names)
    after = artifact_bytes(project), state(project)[:2], (project / "dvc.lock").read_bytes()
    assert after == before

    # The experiments are DVC's own: diff, plots diff and apply work on them as usual.
    diff = json.loads(run(project, "dvc", "exp", "diff", names[0], names[1], "--json").stdout)
    lr = diff["params"]["params.yaml"]["train.lr"]
    assert (lr["old"], lr["new"]) == (float(cells[0][1]), float(cells[1][1]))
    plots = json.loads(run(project, "dvc", "plots", "diff", *names[:2], "--json").stdout)
    assert plots["data"][TRAIN_LOG][0]["revisions"] == names[:2]
    run(project, "dvc", "exp", "apply", names[0])
    applied = json.loads((project / METRICS).read_text())["test_mae"]
    assert f"{applied:.6g}" == cells[0][3].strip()


def test_sweep_checks_every_point_before_running_any(project):
    params = (project / "params.yaml").read_bytes()
    result = sweep(project, "train.lr=0.1,-1", check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "error: GRID point train.lr=-1: train.lr = -1: input should be greater than 0\n"
    )
    assert experiment_names(project) == set()
    assert (project / "params.yaml").read_bytes() == params
    many = sweep(project, "--max-points=2", "--", "train.lr=0.1,0.2,0.3", check=False)
    assert (many.returncode, many.stderr) == (1, (
        "error: GRID: 3 points, and a sweep runs at most 2 (MAX_POINTS: make sweep "
        "MAX_POINTS=N, or --max-points N, to run more)\n"
    ))  # fmt: skip
    assert experiment_names(project) == set()


def test_make_hands_its_variables_to_the_commands_as_given(tmp_path):
    """A $ in a variable is text, not make's (a $(shell ...) in BASE runs nothing), and a value
    that starts with - reaches the command as a value."""
    flag = tmp_path / "ran"
    recipe = 'show: ; @printf "%s\\n" "$$BASE" "$$GRID"'
    variables = [f"BASE=$(shell touch {flag})", "GRID=-x"]
    shown = subprocess.run(
        ["make", "-s", "--eval", recipe, "show", *variables],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert shown.splitlines() == [f"$(shell touch {flag})", "-x"]
    assert not flag.exists()
    recipes = run(ROOT, "make", "-n", "compare", "sweep").stdout
    assert '--base="$BASE"' in recipes  # --base=-h is a value, where --base -h is an option
    assert '-- "$GRID"' in recipes
