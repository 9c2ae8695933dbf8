"""Check a machine's GPU: `make gpu-check` (python -m bench.gpu_check).

On whatever accelerator there is (cuda, else mps), it checks what a GPU must not break, and
measures a training epoch of `fit` against the bare eager loop over the same batches, side by
side, at 10^6 to 10^8 rows; it prints one table and exits 1 if a check failed. On a machine
without an accelerator it says so in one line and exits 0.

tests/test_gpu.py runs the same checks (not the timings) in the test suite.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.bare_loop import bare_loop
from harness.gpu_checks import CHECKS, accelerator, lesson
from harness.project import synthetic_dataset
from linreg.core.dataset import Dataset, split_dataset
from linreg.core.params import Params, with_overrides
from linreg.core.placement import as_column
from linreg.core.training import fit
from linreg.experiments.report import markdown_table

MINIBATCH_TARGET = 0.8  # a mini-batch epoch of fit against the bare loop's


# ---- throughput -------------------------------------------------------------------------


def epoch_seconds(run: Callable[[int], None], device: str) -> float:
    """Seconds per epoch of run(epochs): the difference of a long and a one-epoch run, so that
    what a run does once (copying the data to the device, building the model) drops out. The
    long run doubles its epochs until the difference is a quarter second at least: a full-batch
    epoch of 10^8 rows takes 2 ms on a GPU, less than the copy's jitter."""

    def seconds(epochs: int) -> float:  # the faster of two runs
        best = float("inf")
        for _ in range(2):
            synchronize(device)
            start = time.perf_counter()
            run(epochs)
            synchronize(device)
            best = min(best, time.perf_counter() - start)
        return best

    one, extra = seconds(1), 2
    while (difference := seconds(1 + extra) - one) < 0.25 and extra < 512:
        extra *= 2
    return difference / extra


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def throughput_rows(device: str, powers: tuple[int, ...]) -> list[tuple[str, ...]]:
    """A table row per data size and batch size: M samples/s of the bare loop and of fit."""
    return [row for power in powers for row in throughput_at(device, power)]


def throughput_at(device: str, power: int) -> list[tuple[str, ...]]:
    params = lesson(device, {"generate.step": 10.0**-power})
    train, test = split_dataset(synthetic_dataset(params.generate), params.split)
    x, y = torch.from_numpy(train.x).to(device), as_column(train.y, torch.device(device))
    rows = []
    for batch_size in (0, 65536, 2**20):

        def bare(epochs: int, batch_size: int = batch_size) -> None:
            bare_loop(x, y, batch_size, epochs, params.train.lr, params.train.seed)

        def ours(epochs: int, batch_size: int = batch_size) -> None:
            fit_quietly(params, train, test, batch_size, epochs)

        bare_epoch = epoch_seconds(bare, device)
        fit_epoch = epoch_seconds(ours, device)
        ratio = bare_epoch / fit_epoch
        target = "" if batch_size == 0 else f">= {MINIBATCH_TARGET:.0%}"
        verdict = "" if not target else (" ok" if ratio >= MINIBATCH_TARGET else " MISSED")
        rows.append(
            (
                f"10^{power}",
                "full" if batch_size == 0 else f"{batch_size:,}",
                f"{len(train) / bare_epoch / 1e6:,.0f}",
                f"{len(train) / fit_epoch / 1e6:,.0f}",
                f"{ratio:.0%}",
                target + verdict,
            )
        )
    return rows


def fit_quietly(params: Params, train: Dataset, test: Dataset, batch_size: int, epochs: int):
    changes = {"train.batch_size": batch_size, "train.epochs": epochs}
    return fit(with_overrides(params, changes, "gpu-check").train, train, test)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    return "\n".join(markdown_table(header, rows))


def main() -> None:
    device = accelerator()
    if device is None:
        print(
            "gpu-check: no GPU here (neither cuda nor mps is available to torch); nothing to check"
        )
        return
    name = torch.cuda.get_device_name() if device == "cuda" else "Apple mps"
    print(f"gpu-check on {device} ({name}), torch {torch.__version__}\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for index, check in enumerate(CHECKS):
            folder = Path(tmp) / str(index)
            folder.mkdir()
            results.append(check(device, folder))
    print(
        table(
            ("check", "result", "detail"),
            [(r.name, "pass" if r.passed else "FAIL", r.detail) for r in results],
        )
    )
    powers = tuple(int(p) for p in sys.argv[1:]) or (6, 7, 8)
    print("\nA training epoch, bare eager loop against fit over the same batches (fit draws its")
    print("shuffle on the device), M samples/s; setup excluded:\n", flush=True)
    header = ("rows", "batch", "bare loop", "fit", "fit / bare", "target")
    print(table(header, throughput_rows(device, powers)))
    if not all(r.passed for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
