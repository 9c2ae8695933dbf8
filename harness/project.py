"""A temporary git copy of the project, the environment to run it in (this venv's tools first
on PATH, a git identity), a stage's cost and the lesson's data in memory: what the tests and
the benchmarks share (neither imports the other)."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import yaml

from linreg.core.dataset import Dataset, split_dataset
from linreg.core.params import SyntheticParams
from linreg.core.synthetic import generate_blocks
from linreg.io.datasets import write_dataset
from linreg.io.params import load_params
from linreg.io.pipeline import output_path

ROOT = Path(__file__).resolve().parents[1]


def _output(stage: str, option: str) -> str:
    return output_path(stage, option, ROOT / "dvc.yaml")


# The pipeline's artifacts, at the paths dvc.yaml's stage commands give them (written there once)
RAW, TRUTH = _output("generate", "out"), _output("generate", "truth")
TRAIN_CSV, TEST_CSV = _output("split", "train"), _output("split", "test")
MODEL, TRAIN_LOG = _output("train", "model"), _output("train", "train-log")
METRICS, PREDICTIONS = _output("evaluate", "metrics"), _output("evaluate", "predictions")
COEFFICIENTS = _output("evaluate", "coefficients")
PREDICTIONS_PNG, LOSS_PNG = _output("plot", "predictions-png"), _output("plot", "loss-png")
POINTS = _output("plot", "points")
ARTIFACTS = (RAW, TRAIN_CSV, TEST_CSV, TRUTH, MODEL, TRAIN_LOG, METRICS, PREDICTIONS)
ARTIFACTS += (COEFFICIENTS, PREDICTIONS_PNG, LOSS_PNG, POINTS)


def make_recipe(target: str) -> tuple[str, ...]:
    """The one command the Makefile's `target` runs, as words."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    return tuple(shlex.split(lines[rule + 1]))


MAKE_PUSH = make_recipe("push")
# What a clone holds that the pipeline needs (dvc.lock and the outputs are made by running it)
PROJECT_FILES = (
    "dvc.yaml",
    "params.yaml",
    "stages",
    "src",
    "data/external/README.md",  # the folder the generate stage depends on (not its CSV files)
    ".dvc/.gitignore",
    ".dvc/plots/loss.json",  # the charts' templates (dvc.yaml's plots)
    ".dvc/plots/predicted.json",
    ".dvcignore",
    ".gitignore",
)
# A copy's .dvc/config: DVC's settings that the project needs, and none of the user's (a
# remote, a cache elsewhere) that would change what a test sees.
DVC_CONFIG = (
    "[core]\n    analytics = false\n    check_update = false\n"
    "[plots]\n    html_template = plots/page.html\n"
)
PLOTS_PAGE = ".dvc/plots/page.html"  # made by make, ignored by git (.gitignore)
# DVC's global and system config are read from here: a folder that does not exist.
NO_DVC_CONFIG = Path(tempfile.gettempdir()) / "linreg-tests-no-dvc-config"


def project_env() -> dict[str, str]:
    """Environment for commands in a copy of the project: this venv first on PATH, a git
    identity, no analytics, and nothing from the user's DVC or git configuration. No
    PYTHONPATH: dvc.yaml's commands must find the copy's library by themselves. No CI: the
    copy is not CI's checkout. No LINREG_DEBUG: errors are tested as users see them."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DVC_", "GIT_", "LINREG_")) and name not in ("PYTHONPATH", "CI")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(GIT_AUTHOR_NAME="linreg", GIT_AUTHOR_EMAIL="linreg@linreg.invalid")
    env.update(GIT_COMMITTER_NAME="linreg", GIT_COMMITTER_EMAIL="linreg@linreg.invalid")
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    env.update(DVC_GLOBAL_CONFIG_DIR=str(NO_DVC_CONFIG), DVC_SYSTEM_CONFIG_DIR=str(NO_DVC_CONFIG))
    env["DVC_NO_ANALYTICS"] = "1"
    return env


@functools.cache
def plots_page_text() -> str:
    """The page `dvc plots` fills, as `make` writes it (linreg.experiments.plots_page)."""
    from linreg.experiments.plots_page import plots_page

    return plots_page()


def copy_project(project: Path, root: Path = ROOT) -> None:
    """Copy the project's files (PROJECT_FILES) of the checkout `root` into the folder
    `project`, with a .dvc/config of its own (DVC_CONFIG) and the plots page `make` writes."""
    (project / ".dvc/plots").mkdir(parents=True, exist_ok=True)
    (project / ".dvc/config").write_text(DVC_CONFIG)
    (project / PLOTS_PAGE).write_text(plots_page_text())
    for name in PROJECT_FILES:
        source, target = root / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)


def make_project(root: Path, env: dict[str, str]) -> Path:
    """A committed git copy of the project under `root`, not yet reproduced."""
    project = root / "project"
    copy_project(project)
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "project"],
    ):
        subprocess.run(command, cwd=project, env=env, check=True)
    return project


def stage_commands() -> dict[str, str]:
    """Each stage's command, from dvc.yaml."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage["cmd"] for name, stage in stages.items()}


def run_stage(command: str, project: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in bytes of one stage's command (env runs it: no shell): the
    largest high-water mark of its process and of any it starts (the ranks of train.nproc)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        ["env", *shlex.split(command)], cwd=project, env=env, stdout=subprocess.DEVNULL
    )
    stage, peak = psutil.Process(process.pid), 0
    while True:
        # Each process's own high-water mark, read while it runs. Not wait4's ru_maxrss: Linux
        # carries the parent's RSS at the fork over the exec, so a stage started from a big
        # process (pytest holding torch) would report that process's size.
        peak = max([peak, *map(_high_water_mark, [process.pid, *_children(stage)])])
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return elapsed, peak


def _children(process: psutil.Process) -> list[int]:
    try:
        return [child.pid for child in process.children(recursive=True)]
    except psutil.NoSuchProcess:  # it has just ended
        return []


def _high_water_mark(pid: int) -> int:
    """VmHWM of a running process in bytes (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # in kB
    return 0


def set_params(project: Path, section: str, **values: object) -> None:
    """Set keys of one section of the copy's params.yaml."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def set_rows(project: Path, power: int) -> None:
    """generate.step = 10^-power on [0, 1): 10^power rows."""
    set_params(project, "generate", start=0.0, end=1.0, step=float(f"1e-{power}"))


def train_seconds_by(
    project: Path, env: dict[str, str], key: str, values: Sequence[object], rounds: int
) -> dict[object, float]:
    """The median wall seconds of the train stage with train.`key` set to each of `values`,
    alternating between them every round so that all see the same machine."""
    command = stage_commands()["train"]
    seconds: dict[object, list[float]] = {value: [] for value in values}
    for _ in range(rounds):
        for value in values:
            set_params(project, "train", **{key: value})
            seconds[value].append(run_stage(command, project, env)[0])
    return {value: statistics.median(times) for value, times in seconds.items()}


def synthetic_dataset(params: SyntheticParams) -> Dataset:
    """The whole synthetic dataset in memory: generate_blocks, joined."""
    return Dataset.joined(list(generate_blocks(params)))


def run_module(module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m module args` in a fresh process from the project's root, on this checkout's
    library (src on PYTHONPATH), its output captured: ranks forked there start as a stage's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=check)


def fit_on_parts(folder: Path, overrides: dict[str, object], nproc: int) -> dict[str, np.ndarray]:
    """The losses and coefficients (weights, then bias) of `nproc` ranks that train on the
    parts of folder/train.csv and folder/test.csv they read, with these train params."""
    out = folder / f"nproc{nproc}.npz"
    run_module("harness.ranks_on_parts", str(folder), str(out), json.dumps(overrides), str(nproc))
    return dict(np.load(out))


def write_lesson_split(folder: Path, power: int) -> None:
    """folder/train.csv and folder/test.csv: the lesson's data and split at 10^power rows."""
    params = load_params(ROOT / "params.yaml")
    generate = params.generate
    assert isinstance(generate, SyntheticParams)
    data = synthetic_dataset(generate.model_copy(update={"step": float(f"1e-{power}")}))
    train, test = split_dataset(data, params.split)
    write_dataset(folder / "train.csv", train)
    write_dataset(folder / "test.csv", test)


def yaml_blocks(page: str) -> list[dict[str, Any]]:
    """The yaml blocks of a docs page (a path from the project's root), in order."""
    text = (ROOT / page).read_text()
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]


def use_real_table(project: Path, table: str) -> None:
    """scikit-learn's diabetes table (examples/diabetes_csv.py) or statsmodels' Longley as the
    project's CSV source, every column but the last a feature, with a shuffled split (what
    docs/your-own-data.md asks of a file's rows) and exact numbers (device cpu)."""
    source = f"data/external/{table}.csv"
    if table == "diabetes":
        example = [sys.executable, str(ROOT / "examples/diabetes_csv.py"), str(project / source)]
        subprocess.run(example, check=True, capture_output=True)
    else:
        import statsmodels.api as sm

        longley = sm.datasets.longley.load_pandas().data
        names = [*longley.columns[1:], longley.columns[0]]  # the features, then TOTEMP
        longley[names].to_csv(project / source, index=False)
    *features, target = (project / source).read_text().split("\n", 1)[0].split(",")
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["generate"] = {"source": source, "features": features, "target": target}
    params["split"]["shuffle"] = True
    params["train"]["device"] = "cpu"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
