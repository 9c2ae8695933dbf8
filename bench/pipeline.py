"""Benchmark: a cold `dvc repro` against the lesson as one plain script, side by side.

Runs both in a temporary copy of the project, alternating, ROUNDS times each, and prints the
medians, their ratio (target <= 2.0) and a no-op `dvc repro` (target <= 0.8 s).
Usage: python bench/pipeline.py [ROUNDS]   (from the project root, with .venv's tools on PATH)
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from project import ROOT, make_project, project_env

# What a run makes: every output folder (but data/external/, a dependency that git holds)
OUTPUTS = ("models", "reports", "dvc.lock", ".dvc/cache", ".dvc/tmp")
KEPT_DATA = "external"


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def clean(project: Path) -> None:
    for path in (project / "data").iterdir():
        if path.name != KEPT_DATA:
            path.unlink()
    for name in OUTPUTS:
        path = project / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    env = project_env()
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), env)
        lesson = [sys.executable, str(ROOT / "bench" / "lesson.py"), str(Path(tmp) / "lesson")]
        timed(lesson, project, env)  # warm the file cache for both sides
        plain, cold, noop = [], [], []
        for _ in range(rounds):
            plain.append(timed(lesson, project, env))
            clean(project)
            cold.append(timed(["dvc", "repro"], project, env))
            noop.append(timed(["dvc", "repro"], project, env))

    plain_s, cold_s, noop_s = (statistics.median(times) for times in (plain, cold, noop))
    print(f"{'median of ' + str(rounds) + ' runs':<28}{'seconds':>10}")
    print(f"{'plain lesson script':<28}{plain_s:>10.2f}")
    print(f"{'cold dvc repro':<28}{cold_s:>10.2f}")
    print(f"{'no-op dvc repro':<28}{noop_s:>10.2f}   target <= 0.80")
    print(f"{'ratio cold / plain':<28}{cold_s / plain_s:>10.2f}   target <= 2.00")


if __name__ == "__main__":
    main()
