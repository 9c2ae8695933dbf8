"""Benchmark: ranks that read only their share, and the train stage, for train.nproc N = 1, 2, 4.

At ten million rows (the scale the processes are for). First, the ranks' reads, side by side:
N processes at once each read their part of data/train.csv and data/test.csv (as the ranks do
now) or both whole files (as every rank did before): the slowest rank's wall and cpu seconds,
and the most memory the read added to a rank. Then the train stage's wall time for each N:
train.nproc up to this machine's cores (params.yaml allows no more), torchrun beyond them; and
its peak memory with 1 and 2 ranks (a rank's against one process's: target <= 0.75). It
prints the date.
Usage: python -m bench.distributed [ROUNDS] [POWER]
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
from pathlib import Path

from harness.project import (
    ROOT,
    make_project,
    project_env,
    run_stage,
    set_params,
    set_rows,
    stage_commands,
    train_seconds_by,
)

NPROCS = (1, 2, 4)


def read_at_once(data: Path, nproc: int, whole: bool) -> list[float]:
    """`nproc` ranks reading at once, each its part or (whole) both whole files: the slowest
    rank's wall and cpu seconds, the largest memory growth, the most train rows a rank read."""
    env = project_env() | {"PYTHONPATH": str(ROOT / "src")}
    parts = [(0, 1)] * nproc if whole else [(rank, nproc) for rank in range(nproc)]
    ranks = [
        subprocess.Popen(
            [sys.executable, "-m", "harness.read_part", str(data), str(part), str(of)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for part, of in parts
    ]
    results = []
    for rank in ranks:
        output = rank.communicate()[0]
        if rank.returncode != 0:
            raise subprocess.CalledProcessError(rank.returncode, rank.args)
        results.append(json.loads(output))
    return [max(column) for column in zip(*results, strict=True)]


def median_read(data: Path, nproc: int, whole: bool, rounds: int) -> list[float]:
    """read_at_once `rounds` times: the median of each figure (the largest memory growth)."""
    runs = [read_at_once(data, nproc, whole) for _ in range(rounds)]
    seconds, cpu, memory, rows = zip(*runs, strict=True)
    return [statistics.median(seconds), statistics.median(cpu), max(memory), rows[0]]


def train_seconds(project: Path, env: dict[str, str], rounds: int) -> dict[int, tuple[str, float]]:
    """The train stage's median seconds for each N: train.nproc up to this machine's cores
    (params.yaml allows no more), torchrun's --nproc-per-node beyond them."""
    cores = os.cpu_count() or 1
    seconds = train_seconds_by(project, env, "nproc", [n for n in NPROCS if n <= cores], rounds)
    timed = {nproc: ("", median) for nproc, median in seconds.items()}
    set_params(project, "train", nproc=1)  # torchrun sets the world size
    script_and_paths = shlex.split(stage_commands()["train"])[2:]  # drop PYTHONPATH=src python
    for nproc in (n for n in NPROCS if n > cores):
        launcher = ["torchrun", "--standalone", f"--nproc-per-node={nproc}"]
        # one thread a rank, torchrun's default, said here so that it prints no warning
        command = shlex.join(["PYTHONPATH=src", "OMP_NUM_THREADS=1", *launcher, *script_and_paths])
        runs = [
            seconds for _ in range(rounds) if (seconds := torchrun_seconds(command, project, env))
        ]
        label = f" (torchrun: more ranks than the {cores} cores)"
        timed[nproc] = (label, statistics.median(runs) if runs else math.nan)
    return timed


def train_peaks(project: Path, env: dict[str, str], rounds: int) -> dict[int, float]:
    """The train stage's peak RSS in MiB (its largest process: a rank, for N > 1) for train.nproc
    N = 1 and 2, each the median of `rounds`, alternating."""
    peaks: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for nproc, runs in peaks.items():
            set_params(project, "train", nproc=nproc)
            runs.append(run_stage(stage_commands()["train"], project, env)[1] / 2**20)
    set_params(project, "train", nproc=1)
    return {nproc: statistics.median(runs) for nproc, runs in peaks.items()}


def torchrun_seconds(command: str, project: Path, env: dict[str, str]) -> float | None:
    """One torchrun of the train stage: its wall seconds, or None, with one line saying so,
    when a rank died (torchrun's own report of it is above that line)."""
    try:
        return run_stage(command, project, env)[0]
    except subprocess.CalledProcessError as failed:
        print(f"a torchrun round failed (exit status {failed.returncode}); left out of the median")
        return None


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    power = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    env, commands = project_env(), stage_commands()
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), env)
        set_rows(project, power)
        for stage in ("generate", "split"):
            run_stage(commands[stage], project, env)
        print(f"bench.distributed, {datetime.date.today()}, {os.cpu_count()} cores")
        print(f"10^{power} rows; each rank's read of train.csv and test.csv, N ranks at once,")
        print(f"median of {rounds} (memory: the most any rank's peak grew while reading)\n")
        print(
            "| N | train rows a rank reads | wall: own part | whole files (before) "
            "| cpu: own part | whole files | memory: own part | whole files |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for nproc in NPROCS:
            part = median_read(project / "data", nproc, False, rounds)
            whole = median_read(project / "data", nproc, True, rounds)
            print(
                f"| {nproc} | {part[3]:,.0f} | {part[0]:.2f} s | {whole[0]:.2f} s "
                f"| {part[1]:.2f} s | {whole[1]:.2f} s "
                f"| {part[2] / 2**20:,.0f} MiB | {whole[2] / 2**20:,.0f} MiB |",
                flush=True,
            )
        seconds = train_seconds(project, env, rounds)
        print(f"\nthe train stage (generate and split excluded), median of {rounds}:\n")
        print("| N | train stage | against N = 1 |")
        print("|---|---|---|")
        for nproc, (label, median) in seconds.items():
            print(f"| {nproc}{label} | {median:.2f} s | {median / seconds[1][1]:.2f} |")
        if (os.cpu_count() or 1) >= 2:
            peaks = train_peaks(project, env, rounds)
            print(f"\nthe train stage's peak memory (its largest process), median of {rounds}:\n")
            print("| N | peak | against N = 1 |\n|---|---|---|")
            print(f"| 1 | {peaks[1]:.0f} MiB | |")
            print(f"| 2 | {peaks[2]:.0f} MiB | {peaks[2] / peaks[1]:.2f} (target <= 0.75) |")


if __name__ == "__main__":
    main()
