"""Benchmark: train.dtype float32 against float64, side by side.

First, how far ranks drift apart: the lesson at 10^6 and 10^7 rows (generate.step 1e-6, 1e-7),
full batch, 100 epochs, trained by 1, 2 and 3 ranks that each read their part of the files;
the largest relative difference of the final weight and bias from one rank's. Then training
throughput at 10^7 rows for each precision, full batch and mini-batches (best of 3, alternating).
It prints the date.
Usage: python -m bench.precision [ROUNDS]
"""

from __future__ import annotations

import datetime
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.project import fit_on_parts, synthetic_dataset, write_lesson_split

DTYPES = ("float32", "float64")
NPROCS = (2, 3)


def agreement_table(powers: tuple[int, ...]) -> None:
    print("ranks against one process: largest relative difference of the final weight and bias")
    print(f"  {'rows':<8}{'dtype':<9}" + "".join(f"{f'nproc {n}':>12}" for n in NPROCS))
    for power in powers:
        with tempfile.TemporaryDirectory() as folder:
            write_lesson_split(Path(folder), power)
            for dtype in DTYPES:
                overrides = {"train.device": "cpu", "train.dtype": dtype}
                one = fit_on_parts(Path(folder), overrides, 1)["coefficients"]
                cells = []
                for nproc in NPROCS:
                    many = fit_on_parts(Path(folder), overrides, nproc)["coefficients"]
                    cells.append(f"{np.max(np.abs(many - one) / np.abs(one)):>12.1e}")
                print(f"  10^{power:<5}{dtype:<9}" + "".join(cells))


def throughput_table(rows: int, epochs: int, rounds: int) -> None:
    """fit's training samples per second in each precision, full batch and mini-batches."""
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
    runs = {
        (dtype, batch): with_overrides(
            params, {"train.dtype": dtype, "train.batch_size": batch}, "bench"
        ).train
        for batch in (0, 65536)
        for dtype in DTYPES
    }
    best = dict.fromkeys(runs, math.inf)
    for _ in range(rounds):  # alternate, keep each one's best: the least disturbed run
        for key, settings in runs.items():
            start = time.perf_counter()
            fit(settings, train, test)
            best[key] = min(best[key], time.perf_counter() - start)
    print(f"\ntraining throughput, {len(train):,} train rows x {epochs} epochs (best of {rounds})")
    print(f"  {'batch':<12}{'float32':>16}{'float64':>16}{'float64/float32':>18}")
    for batch in (0, 65536):
        rate = {dtype: len(train) * epochs / best[dtype, batch] / 1e6 for dtype in DTYPES}
        name = "full" if batch == 0 else str(batch)
        print(
            f"  {name:<12}{rate['float32']:>10.1f} M/s{rate['float64']:>10.1f} M/s"
            f"{rate['float64'] / rate['float32']:>18.2f}"
        )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"bench.precision, {datetime.date.today()}, {os.cpu_count()} cores")
    agreement_table((6, 7))
    throughput_table(rows=10**7, epochs=20, rounds=rounds)


if __name__ == "__main__":
    main()
