"""Check a machine's GPU: `make gpu-check` (python -m bench.gpu_check).

On whatever accelerator there is (cuda, else mps), it checks what a GPU must not break, and
measures a training epoch of `fit` against the bare eager loop over the same batches, side by
side, at 10^6 to 10^8 rows; it prints one table and exits 1 if a check failed. On a machine
without an accelerator it says so in one line and exits 0.

tests/test_gpu.py runs the same checks (not the timings) in the test suite.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.bare_loop import bare_loop
from bench.project import ROOT, copy_project, project_env, set_params, set_rows, stage_commands
from linreg.checkpoint import save_checkpoint
from linreg.dataset import Dataset, split_dataset
from linreg.distributed import auto_device, devices_here, gpu_count
from linreg.evaluation import predict
from linreg.experiments.report import markdown_table
from linreg.params import Params, load_params, with_overrides
from linreg.synthetic import generate_dataset
from linreg.training import as_column, fit

AGREEMENT = 1e-6  # cpu against the accelerator on the lesson: weights and losses
MINIBATCH_TARGET = 0.8  # a mini-batch epoch of fit against the bare loop's


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def accelerator() -> str | None:
    """The device train.device: auto takes, when it is not the cpu."""
    device = auto_device(devices_here())
    return None if device == "cpu" else device


def lesson(device: str, overrides: dict[str, object] | None = None) -> Params:
    """The project's params, training on `device`, with dotted overrides (train.lr)."""
    changes = {"train.device": device} | (overrides or {})
    return with_overrides(load_params(ROOT / "params.yaml"), changes, "gpu-check")


def check_agreement(device: str) -> Check:
    """The lesson trained on the cpu and on `device`: weights and every logged loss agree."""
    results = {}
    for where in ("cpu", device):
        params = lesson(where)
        train, test = split_dataset(generate_dataset(params.generate), params.split)
        results[where] = fit(params.train, train, test)
    cpu, gpu = results["cpu"], results[device]
    (cpu_weight,), cpu_bias = cpu.model.coefficients()
    (gpu_weight,), gpu_bias = gpu.model.coefficients()
    differences = [abs(cpu_weight - gpu_weight), abs(cpu_bias - gpu_bias)] + [
        float(np.max(np.abs(getattr(cpu.history, name) - getattr(gpu.history, name))))
        for name in ("train_loss", "test_loss")
    ]
    worst = max(differences)
    return Check(
        f"cpu and {device} agree on the lesson",
        worst <= AGREEMENT,
        f"largest difference {worst:.1e} (at most {AGREEMENT:g})",
    )


def check_checkpoint_on_cpu(device: str, folder: Path) -> Check:
    """A model trained on `device` is saved, then loaded and used by a process that sees no
    GPU: its predictions are the trained model's."""
    params = lesson(device)
    train, test = split_dataset(generate_dataset(params.generate), params.split)
    model = fit(params.train, train, test).model
    path = folder / "model.pt"
    save_checkpoint(path, model)
    x = ["0.1", "0.5", "0.9"]
    expected = "".join(
        f"{a:g}\t{b:.6f}\n"
        for a, b in zip(
            np.float32(x).tolist(),
            predict(model, np.float32(x).reshape(-1, 1)).tolist(),
            strict=True,
        )
    )
    hidden = {"CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "linreg.predict", "--model", str(path), *x],
        env=project_env() | hidden,
        capture_output=True,
        text=True,
        check=False,
    )
    return Check(
        f"a checkpoint trained on {device} predicts in a process without a GPU",
        result.returncode == 0 and result.stdout == expected,
        "same predictions" if result.stdout == expected else f"got {result.stdout!r}",
    )


def stage_project(folder: Path, device: str, power: int) -> Path:
    """A copy of the project (no git, no DVC) with data of 10^power rows, training on device."""
    project = folder / "project"
    copy_project(project)
    set_rows(project, power)
    set_params(project, "train", device=device, epochs=20)
    for stage in ("generate", "split"):
        run_command(project, stage_commands()[stage])
    return project


def run_command(project: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["env", *shlex.split(command)],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def check_repeatable(device: str, folder: Path) -> Check:
    """Two train stages on `device`, in separate processes, at 10^6 rows, full batch and in
    mini-batches: byte-identical checkpoints and train logs."""
    project = stage_project(folder, device, 6)
    outputs = ("models/model.pt", "reports/train_log.csv")
    differing = []
    for batch_size in (0, 65536):
        set_params(project, "train", batch_size=batch_size)
        runs = []
        for _ in range(2):
            result = run_command(project, stage_commands()["train"])
            if result.returncode != 0:
                return Check(f"two {device} runs are byte-identical", False, result.stderr[-300:])
            runs.append([(project / name).read_bytes() for name in outputs])
        differing += [
            f"{name} (batch {batch_size})"
            for name, a, b in zip(outputs, *runs, strict=True)
            if a != b
        ]
    return Check(
        f"two {device} runs are byte-identical",
        not differing,
        "checkpoint and train log, full batch and batch 65536, 10^6 rows"
        if not differing
        else "differ: " + ", ".join(differing),
    )


def check_too_many_processes(device: str, folder: Path) -> Check:
    """train.nproc above the GPUs there are: one line, before any rank starts."""
    project = stage_project(folder, device, 2)
    nproc = (gpu_count() if device == "cuda" else 1) + 1
    if nproc > (os.cpu_count() or 1):
        return Check("nproc above the GPU count fails in one line", True, "skipped: too few cores")
    set_params(project, "train", nproc=nproc)
    result = run_command(project, stage_commands()["train"])
    lines = result.stderr.splitlines()
    expected = rf"error: train\.nproc = {nproc}: (each process needs a GPU|processes cannot share)"
    return Check(
        "nproc above the GPU count fails in one line",
        result.returncode == 1 and len(lines) == 1 and re.match(expected, lines[0]) is not None,
        lines[0] if lines else f"exit {result.returncode}, no message",
    )


CHECKS: list[Callable[[str, Path], Check]] = [
    lambda device, folder: check_agreement(device),
    check_checkpoint_on_cpu,
    check_repeatable,
    check_too_many_processes,
]


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
    train, test = split_dataset(generate_dataset(params.generate), params.split)
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
