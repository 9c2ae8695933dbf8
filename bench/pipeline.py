"""Benchmark: the pipeline against the least the same work costs, side by side, as users feel it.

In a temporary copy of the project, reproduced once (outputs, cache and dvc.lock in place, as
in a working copy), it alternates ROUNDS times:
- the lesson as one plain script doing the same work (bench/lesson.py: data, 100 epochs,
  evaluation, both plots, save) and `dvc repro -f`, every stage rerun: their ratio is what the
  pipeline's machinery costs (target <= 1.5);
- a no-op `dvc repro` of the project and of DVC's floor: a pipeline of as many stages that
  each write one small file from the one before, reproduced once: their ratio is what the
  project adds to DVC's own check (target <= 1.25); NOOP_PAIRS pairs a round.
It prints the medians and ratios with the date; then each stage's own command split into the
interpreter's start, the script's imports and its work, and what is left of `dvc repro -f`
for DVC itself.
Usage: python -m bench.pipeline [ROUNDS]   (from the project root, with .venv's tools on PATH)
"""

from __future__ import annotations

import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.project import DVC_CONFIG, ROOT, make_project, project_env, stage_commands

COLD_TARGET, NOOP_TARGET = 1.5, 1.25
# No-op pairs a round: a no-op takes about a second and moves by a tenth from run to run here,
# so the no-op ratio is the median of this many pairs a round, not of one.
NOOP_PAIRS = 5


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


# Runs a stage script as far as its imports (the module level), not its main, and ends as a
# stage ends (linreg.runtime.cli.run_stage): at once, without the interpreter's teardown.
IMPORTS_ONLY = "import os, runpy, sys; runpy.run_path(sys.argv[1], run_name='imports'); os._exit(0)"


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


def dvc_floor(root: Path, stages: int, env: dict[str, str]) -> Path:
    """A reproduced git repository whose pipeline has `stages` stages, each writing one small
    file from the one before: what any DVC pipeline of that many stages checks."""
    floor = root / "floor"
    (floor / ".dvc").mkdir(parents=True)
    (floor / ".dvc/config").write_text(DVC_CONFIG)
    (floor / "in0").write_text("0\n")
    lines = ["stages:"]
    for n in range(1, stages + 1):
        lines += [
            f"  s{n}:",
            f"    cmd: cp in{n - 1} in{n}",
            f"    deps: [in{n - 1}]",
            f"    outs: [in{n}]",
        ]
    (floor / "dvc.yaml").write_text("\n".join(lines) + "\n")
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "floor"],
        ["dvc", "repro", "-q"],
    ):
        subprocess.run(command, cwd=floor, env=env, check=True, stdout=subprocess.DEVNULL)
    return floor


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    env = project_env()
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), env)
        floor = dvc_floor(Path(tmp), len(stage_commands()), env)
        lesson = [sys.executable, str(ROOT / "bench" / "lesson.py"), str(Path(tmp) / "lesson")]
        timed(lesson, project, env)  # warm the file cache for both sides
        timed(["dvc", "repro"], project, env)  # a working copy: reproduced once
        plain, forced, noop, floor_noop = [], [], [], []
        for _ in range(rounds):
            plain.append(timed(lesson, project, env))
            forced.append(timed(["dvc", "repro", "-f"], project, env))
            for _ in range(NOOP_PAIRS):
                noop.append(timed(["dvc", "repro"], project, env))
                floor_noop.append(timed(["dvc", "repro"], floor, env))
        costs = stage_costs(project, env, rounds)

    plain_s, forced_s, noop_s, floor_s = map(statistics.median, (plain, forced, noop, floor_noop))
    print(
        f"bench.pipeline, {datetime.date.today()}, {os.cpu_count()} cores, median of {rounds}"
        f" ({rounds * NOOP_PAIRS} for the no-ops)"
    )
    print(f"{'':<34}{'seconds':>9}")
    print(f"{'plain lesson script':<34}{plain_s:>9.2f}")
    print(f"{'dvc repro -f (every stage)':<34}{forced_s:>9.2f}")
    print(f"{'no-op dvc repro':<34}{noop_s:>9.2f}")
    print(f"{'no-op dvc repro, DVC floor':<34}{floor_s:>9.2f}")
    print(f"{'ratio dvc repro -f / plain':<34}{forced_s / plain_s:>9.2f}   target <= {COLD_TARGET}")
    print(f"{'ratio no-op / DVC floor':<34}{noop_s / floor_s:>9.2f}   target <= {NOOP_TARGET}")
    print(f"\n{'stage (median seconds)':<34}{'start':>8}{'imports':>9}{'work':>8}{'total':>8}")
    for stage, (start, imports, work) in costs.items():
        total = start + imports + work
        print(f"{stage:<34}{start:>8.2f}{imports:>9.2f}{work:>8.2f}{total:>8.2f}")
    stages_s = sum(sum(cost) for cost in costs.values())
    print(f"{'all stages':<34}{'':>25}{stages_s:>8.2f}")
    print(f"{'DVC itself (dvc repro -f - stages)':<34}{'':>25}{forced_s - stages_s:>8.2f}")


if __name__ == "__main__":
    main()
