"""What the benchmarks share: a temporary git copy of the project and the environment to run
it in (this venv's tools first on PATH, a git identity)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# What a clone holds that the pipeline needs (as tests/conftest.py copies it)
PROJECT_FILES = (
    "dvc.yaml",
    "params.yaml",
    "stages",
    "src",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@linreg.invalid")
    env.update(GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@linreg.invalid")
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("CI", None)
    return env


def make_project(root: Path, env: dict[str, str]) -> Path:
    """A committed git copy of the project under `root`, not yet reproduced."""
    project = root / "project"
    for name in PROJECT_FILES:
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, target)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(command, cwd=project, env=env, check=True)
    return project


def stage_commands() -> dict[str, str]:
    """Each stage's command, from dvc.yaml."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage["cmd"] for name, stage in stages.items()}


def run_stage(command: str, project: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in bytes of one stage's command (env runs it: no shell)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        ["env", *shlex.split(command)], cwd=project, env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command!r} exited {process.returncode}")
    return elapsed, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def set_params(project: Path, section: str, **values: object) -> None:
    """Set keys of one section of the copy's params.yaml."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def set_rows(project: Path, power: int) -> None:
    """generate.step = 10^-power on [0, 1): 10^power rows."""
    set_params(project, "generate", start=0.0, end=1.0, step=float(f"1e-{power}"))
