"""Benchmark: how each stage's time and memory grow with the row count, and training speed.

Runs every stage of dvc.yaml (its own command) in a temporary copy of the project at 10^3 ...
10^N rows (generate.step = 1e-3 ... 1e-N) and prints, per stage and in total, the wall time,
the peak RSS and the growth exponent between the two largest sizes (time ~ rows^exponent;
target <= 1.0: ten times the rows in at most ten times the time), with each stage's peak RSS
at the largest size against its bound (train holds the rows it trains on: 2.5 GiB; the
others stream: 1 GiB). Then it times training side by side with the read floor (x and y
summed, what a full-batch epoch must read: fit within 4x of it is the target) and a bare
PyTorch loop doing the same arithmetic, full batch and in mini-batches of 65,536 (targets
>= 70 % and >= 50 %), at 10^N rows, 10^7 at the most; and fit's first call in a fresh process
(what a train stage pays) against the same call repeated (target <= 1.25x). It prints the date.
Usage: python -m bench.scale [LARGEST_POWER]   (default 7; 8 is the 10^8 rows table)

With --against REV it instead times the streaming stages that read CSV a block at a time
(split, evaluate, plot) with this checkout's code and with REV's, alternately, side by side on
the same files, at 10^7 and 10^8 rows (or the powers given):
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
from pathlib import Path

from bench.bare_loop import bare_loop
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
    """Training samples per second: fit() against a bare loop, same data, side by side."""
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
    train, test = split_dataset(synthetic_dataset(params.generate), params.split)
    samples = len(train) * epochs

    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y).unsqueeze(1)  # (n, 1) each

    def bare(batch_size: int) -> None:
        bare_loop(x, y, batch_size, epochs, params.train.lr, params.train.seed)

    def ours(batch_size: int) -> None:
        overrides = {"train.batch_size": batch_size}
        fit(with_overrides(params, overrides, "bench").train, train, test)

    def floor(_: int = 0) -> None:  # what a full-batch epoch must read: x and y, once
        for _ in range(epochs):
            x.sum(), y.sum()

    runs = {
        "read floor (x, y summed)": floor,
        "bare loop": lambda: bare(0),
        "fit, full batch": lambda: ours(0),
        "fit, batch 65536": lambda: ours(65536),
        "bare, 65536, no shuffle": lambda: bare(65536),
    }
    best = {name: math.inf for name in runs}
    for _ in range(3):  # alternate, keep each one's best: the least disturbed run
        for name, function in runs.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    rate = {name: samples / seconds / 1e6 for name, seconds in best.items()}
    print(f"\ntraining throughput, {len(train):,} train rows x {epochs} epochs (best of 3)")
    for name in runs:
        print(f"  {name:<24}{rate[name]:>8.1f} M samples/s")
    full, batched = rate["fit, full batch"], rate["fit, batch 65536"]
    floor_ratio = rate["read floor (x, y summed)"] / full
    print(f"  read floor / full batch     {floor_ratio:>6.1f}x  target <= 4x")
    print(f"  full batch / bare loop      {full / rate['bare loop']:>6.0%}   target >= 70%")
    print(f"  batch 65536 / full batch    {batched / full:>6.0%}   target >= 50%")
    bound = rate["bare, 65536, no shuffle"] / full
    print(
        f"  (65536 with no shuffle at all / full batch: {bound:.0%}, the most any shuffle allows)"
    )


def first_call(rows: int, epochs: int, rounds: int = 3) -> None:
    """fit's first call in a fresh process (a train stage's) against the same call repeated
    there (harness/fit_calls.py): the median of `rounds` fresh processes."""
    runs = [json.loads(run_module("harness.fit_calls", str(rows), str(epochs)).stdout)
            for _ in range(rounds)]  # fmt: skip
    first, warm = (statistics.median(run[i] for run in runs) for i in (0, 1))
    print(f"\nfit's first call in a fresh process, {rows:,} rows x {epochs} epochs "
          f"(median of {rounds})")  # fmt: skip
    print(f"  first {first:.2f} s, warm {warm:.2f} s: {first / warm:.2f}x   target <= 1.25x")


STREAMING = ("split", "evaluate", "plot")


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
    largest = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(f"bench.scale, {datetime.date.today()}, {os.cpu_count()} cores")
    scale_table(largest)
    throughput(rows=10 ** min(largest, 7), epochs=20)  # 10^8 rows add minutes, not insight
    first_call(rows=10 ** min(largest, 7), epochs=100)


if __name__ == "__main__":
    main()
