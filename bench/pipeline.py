"""Benchmark: a cold `dvc repro` against the lesson as one plain script, side by side.

Runs both in a temporary copy of the project, alternating, ROUNDS times each, and prints the
medians, their ratio (target <= 1.6) and a no-op `dvc repro` (target <= 0.8 s); then each
stage's own command split into the interpreter's start, the script's imports and its work,
and what is left of the cold `dvc repro` for DVC itself.
Usage: python -m bench.pipeline [ROUNDS]   (from the project root, with .venv's tools on PATH)
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.project import ROOT, make_project, project_env, stage_commands

# What a run makes: every output folder (but data/external/, a dependency that git holds)
OUTPUTS = ("models", "reports", "dvc.lock", ".dvc/cache", ".dvc/tmp")
KEPT_DATA = "external"


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


# Runs a stage script as far as its imports (the module level), not its main.
IMPORTS_ONLY = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='imports')"


def stage_costs(project: Path, env: dict[str, str], rounds: int) -> dict[str, list[float]]:
    """Per stage, the median seconds of [interpreter start, imports, work] of its command,
    run as dvc.yaml says (in a reproduced project, so that its inputs are there)."""
    stage_env = env | {"PYTHONPATH": "src"}

    def median(command: list[str]) -> float:
        return statistics.median(timed(command, project, stage_env) for _ in range(rounds))

    start = median([sys.executable, "-c", "pass"])
    costs = {}
    for stage, command in stage_commands().items():
        script = next(word for word in command.split() if word.startswith("stages/"))
        imports = median([sys.executable, "-c", IMPORTS_ONLY, script]) - start
        whole = median(["sh", "-c", command])
        costs[stage] = [start, imports, whole - start - imports]
    return costs


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
        costs = stage_costs(project, env, rounds)

    plain_s, cold_s, noop_s = (statistics.median(times) for times in (plain, cold, noop))
    print(f"{'median of ' + str(rounds) + ' runs':<28}{'seconds':>10}")
    print(f"{'plain lesson script':<28}{plain_s:>10.2f}")
    print(f"{'cold dvc repro':<28}{cold_s:>10.2f}")
    print(f"{'no-op dvc repro':<28}{noop_s:>10.2f}   target <= 0.80")
    print(f"{'ratio cold / plain':<28}{cold_s / plain_s:>10.2f}   target <= 1.60")
    print(f"\n{'stage (median seconds)':<28}{'start':>8}{'imports':>9}{'work':>8}{'total':>8}")
    for stage, (start, imports, work) in costs.items():
        total = start + imports + work
        print(f"{stage:<28}{start:>8.2f}{imports:>9.2f}{work:>8.2f}{total:>8.2f}")
    stages_s = sum(sum(cost) for cost in costs.values())
    print(f"{'all stages':<28}{'':>25}{stages_s:>8.2f}")
    print(f"{'DVC itself (cold - stages)':<28}{'':>25}{cold_s - stages_s:>8.2f}")


if __name__ == "__main__":
    main()
