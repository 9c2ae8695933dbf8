"""Benchmark: how each stage's time and memory grow with the row count, and training speed.

Runs every stage of dvc.yaml (its own command) in a temporary copy of the project at 10^3 ...
10^N rows (generate.step = 1e-3 ... 1e-N) and prints, per stage and in total, the wall time,
the peak RSS and the growth exponent between the two largest sizes (time ~ rows^exponent;
target <= 1.0: ten times the rows in at most ten times the time), with each stage's peak RSS
at the largest size against its bound (train holds the rows it trains on: 2.5 GiB; the
others stream: 1 GiB). Then it times training at 10^N rows (10^7 at the most): a full-batch
epoch side by side with the read floor (x and y summed, what it must read: fit within 4x of it
is the target) for the lesson's line, in float64 and with 10 features; mini-batches of 65,536
against full batch (target >= 50 %); and fit's first call in a fresh process that reads its
data as a train stage does, against the same call repeated (target <= 1.25x). It prints the
date. --training times the training alone.
Usage: python -m bench.scale [--training] [LARGEST_POWER]   (default 7; 8: the 10^8 rows table)

With --against REV it instead times the streaming stages that write or read CSV a block at a
time (generate, split, evaluate, plot) with this checkout's code and with REV's, alternately,
side by side on the same files, at 10^7 and 10^8 rows (or the powers given):
       python -m bench.scale --against REV [POWER ...]
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from linreg.core.dataset import Dataset

from harness.project import (
    ROOT,
    make_project,
    project_env,
    run_module,
    run_stage,
    set_params,
    set_rows,
    stage_commands,
    synthetic_dataset,
    write_lesson_split,
)

STAGES = ("generate", "split", "train", "evaluate", "plot")
# Peak RSS bounds at any row count, GiB (issue 15): train holds its rows, the others stream.
RSS_BOUND_GIB = {"generate": 1.0, "split": 1.0, "train": 2.5, "evaluate": 1.0, "plot": 1.0}
EXPONENT_TARGET = 1.0


def scale_table(largest: int) -> None:
    env = project_env()
    commands = stage_commands()
    powers = range(3, largest + 1)
    times: dict[int, dict[str, float]] = {}
    peaks: dict[int, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), env)
        for power in powers:
            set_rows(project, power)
            times[power], peaks[power] = {}, {}
            for stage in STAGES:
                times[power][stage], peaks[power][stage] = run_stage(commands[stage], project, env)
            print(f"  10^{power} rows: {sum(times[power].values()):.1f} s", file=sys.stderr)

    header = f"{'stage':<10}" + "".join(f"{'10^' + str(p):>16}" for p in powers)
    print(f"\nwall time (s) / peak RSS (MiB) per stage\n{header}{'exponent':>10}")
    big, small = powers[-1], powers[-2]
    for stage in (*STAGES, "total"):

        def seconds(power: int, stage: str = stage) -> float:
            row = times[power]
            return sum(row.values()) if stage == "total" else row[stage]

        def peak(power: int, stage: str = stage) -> int:
            row = peaks[power]
            return max(row.values()) if stage == "total" else row[stage]

        cells = "".join(f"{seconds(p):>8.2f} /{peak(p) / 2**20:>6.0f}" for p in powers)
        exponent = math.log10(seconds(big) / seconds(small)) / (big - small)
        print(f"{stage:<10}{cells}{exponent:>10.2f}")
    print(
        f"\ngrowth exponent 10^{small} -> 10^{big}: time ~ rows^exponent, target <= "
        f"{EXPONENT_TARGET} (the whole pipeline at 10^{big} in "
        f"{sum(times[big].values()) / sum(times[small].values()):.1f} x its time at 10^{small})"
    )
    print(f"peak RSS at 10^{big} against each stage's bound:")
    for stage in STAGES:
        peak_gib, bound = peaks[big][stage] / 2**30, RSS_BOUND_GIB[stage]
        verdict = "ok" if peak_gib <= bound else "OVER"
        print(f"  {stage:<10}{peak_gib:>6.2f} GiB  (bound {bound} GiB) {verdict}")


def throughput(rows: int, epochs: int) -> None:
    """A full-batch epoch against the read floor (x and y summed: what it must read), side by
    side, for the lesson's line (k = 1, float32), in float64 and with k = 10 features; and
    mini-batches of 65,536 against full batch. The best of 3 alternating rounds."""
    import torch

    from linreg.core.dataset import split_dataset
    from linreg.core.params import with_overrides
    from linreg.core.training import fit
    from linreg.io.params import load_params

    params = with_overrides(
        load_params(),
        {"generate.step": 1 / rows, "train.epochs": epochs, "train.device": "cpu"},
        "bench",
    )
    lesson = split_dataset(synthetic_dataset(params.generate), params.split)
    wide = _features(lesson, 10)
    runs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {}
    for name, (train, test), dtype in [
        ("k = 1, float32", lesson, "float32"),
        ("k = 1, float64", lesson, "float64"),
        ("k = 10, float32", wide, "float32"),
    ]:
        x = torch.from_numpy(train.x.astype(dtype))
        y = torch.from_numpy(train.y.astype(dtype))
        settings = with_overrides(params, {"train.dtype": dtype}, "bench").train
        runs[name] = (
            partial(_summed, x, y, epochs),
            partial(fit, settings, train, test),
        )
    batched = with_overrides(params, {"train.batch_size": 65536}, "bench").train
    runs["k = 1, float32, batch 65536"] = (lambda: None, partial(fit, batched, *lesson))
    floor, fitted = ({name: math.inf for name in runs} for _ in range(2))
    for _ in range(3):  # alternate, keep each one's best: the least disturbed run
        for name, (read, train_once) in runs.items():
            floor[name] = min(floor[name], _seconds(read))
            fitted[name] = min(fitted[name], _seconds(train_once))
    samples = len(lesson[0]) * epochs
    print(f"\nfull-batch epochs against the read floor, {len(lesson[0]):,} train rows x {epochs}"
          " epochs (best of 3, alternating)")  # fmt: skip
    print(f"  {'':<30}{'floor':>14}{'fit':>14}{'fit / floor':>13}")
    for name in list(runs)[:3]:
        target = "   target <= 4x" if name == "k = 1, float32" else ""
        floor_rate, fit_rate = (samples / seconds[name] / 1e6 for seconds in (floor, fitted))
        print(f"  {name:<30}{floor_rate:>8.0f} M/s{fit_rate:>9.0f} M/s"
              f"{fitted[name] / floor[name]:>12.1f}x{target}")  # fmt: skip
    full, mini = fitted["k = 1, float32"], fitted["k = 1, float32, batch 65536"]
    print(f"  mini-batches of 65,536: {samples / mini / 1e6:.0f} M rows/s, {full / mini:.0%} of "
          "full batch   target >= 50%")  # fmt: skip


def _features(sets: tuple[Dataset, Dataset], k: int) -> tuple[Dataset, Dataset]:
    """The train and test sets with k features: x and k - 1 seeded normal columns."""
    import numpy as np

    from linreg.core.dataset import Dataset

    rng = np.random.default_rng(0)

    def widened(data: Dataset) -> Dataset:
        noise = rng.standard_normal((len(data), k - 1), dtype=np.float32)
        x = np.ascontiguousarray(np.column_stack([data.x, noise]))
        return Dataset(x, data.y, tuple(f"x{i}" for i in range(k)), data.target)

    return widened(sets[0]), widened(sets[1])


def _summed(x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    for _ in range(epochs):
        x.sum(), y.sum()


def _seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def first_call(power: int, epochs: int, rounds: int = 3) -> None:
    """fit's first call in a fresh process that reads the data as a train stage does, against
    the same call repeated there (harness/fit_calls.py): the median of `rounds` processes."""
    with tempfile.TemporaryDirectory() as tmp:
        write_lesson_split(Path(tmp), power)
        runs = [json.loads(run_module("harness.fit_calls", tmp, str(epochs)).stdout)
                for _ in range(rounds)]  # fmt: skip
    first, warm = (statistics.median(run[i] for run in runs) for i in (0, 1))
    print(f"\nfit's first call in a fresh process, 10^{power} rows x {epochs} epochs "
          f"(median of {rounds})")  # fmt: skip
    print(f"  first {first:.2f} s, warm {warm:.2f} s: {first / warm:.2f}x   target <= 1.25x")


STREAMING = ("generate", "split", "evaluate", "plot")


def against_table(revision: str, powers: list[int]) -> None:
    """Each streaming stage's wall time and peak RSS with REV's code and with this checkout's,
    run alternately on the same files (made once, by this checkout's stages; train for one
    epoch, as evaluate needs a model), and their ratio: after / before. The median of three
    rounds up to 10^7 rows, of two above."""
    env = project_env()
    commands = stage_commands()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(
            ["git", "archive", revision, "src", "stages"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        codes = {"before": before, "after": ROOT}
        project = make_project(Path(tmp), env)
        for power in powers:
            set_rows(project, power)
            set_params(project, "train", epochs=1)
            for stage in ("generate", "split", "train"):
                run_stage(commands[stage], project, env)
            seconds: dict[tuple[str, str], list[float]] = {}
            peaks: dict[tuple[str, str], int] = {}
            for _ in range(3 if power <= 7 else 2):
                for stage in STREAMING:
                    for code, folder in codes.items():
                        command = _with_code(commands[stage], folder)
                        wall, peak = run_stage(command, project, env)
                        seconds.setdefault((stage, code), []).append(wall)
                        peaks[stage, code] = max(peaks.get((stage, code), 0), peak)
            for stage in STREAMING:
                old, new = (statistics.median(seconds[stage, code]) for code in codes)
                old_peak, new_peak = (peaks[stage, code] / 2**20 for code in codes)
                rows.append(
                    f"| {stage} | 10^{power} | {old:.1f} s / {old_peak:.0f} MiB "
                    f"| {new:.1f} s / {new_peak:.0f} MiB | {new / old:.2f} |"
                )
            print(f"  10^{power} rows done", file=sys.stderr)
    print(f"\nstreaming stages, {revision} (before) against this checkout (after)")
    print("wall time / peak RSS")
    print("| stage | rows | before | after | after / before |\n|---|---|---|---|---|")
    print("\n".join(rows))


def _with_code(command: str, code: Path) -> str:
    """A stage's command running the stage script and the library of the checkout `code`."""
    words = shlex.split(command)
    words = [f"PYTHONPATH={code}/src" if w == "PYTHONPATH=src" else w for w in words]
    return shlex.join(str(code / w) if w.startswith("stages/") else w for w in words)


def main() -> None:
    if sys.argv[1:2] == ["--against"]:
        against_table(sys.argv[2], [int(p) for p in sys.argv[3:]] or [7, 8])
        return
    training_only = sys.argv[1:2] == ["--training"]
    powers = sys.argv[1 + training_only :]
    largest = int(powers[0]) if powers else 7
    print(f"bench.scale, {datetime.date.today()}, {os.cpu_count()} cores")
    if not training_only:
        scale_table(largest)
    throughput(rows=10 ** min(largest, 7), epochs=20)  # 10^8 rows add minutes, not insight
    first_call(power=min(largest, 7), epochs=100)


if __name__ == "__main__":
    main()
