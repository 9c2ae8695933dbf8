"""What the benchmarks share: a temporary git copy of the project and the environment to run
it in (this venv's tools first on PATH, a git identity)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a clone holds that the pipeline needs (as tests/conftest.py copies it)
PROJECT_FILES = (
    "dvc.yaml",
    "params.yaml",
    "stages",
    "src",
    ".dvc/config",
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
