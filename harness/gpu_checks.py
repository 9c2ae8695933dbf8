"""What a GPU must not break, checked on whatever accelerator there is (cuda, else mps):
tests/test_gpu.py runs these checks, and `make gpu-check` (bench/gpu_check.py) prints them with
training timings beside them."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linreg.core.dataset import split_dataset
from linreg.core.evaluation import predict
from linreg.core.model import line_coefficients
from linreg.core.params import Params, with_overrides
from linreg.core.placement import auto_device, devices_here
from linreg.core.training import fit
from linreg.io.checkpoint import save_checkpoint
from linreg.io.params import load_params
from linreg.runtime.launcher import gpu_count

from .project import (
    MODEL,
    ROOT,
    TRAIN_LOG,
    copy_project,
    project_env,
    set_params,
    set_rows,
    stage_commands,
    synthetic_dataset,
)

AGREEMENT = 1e-6  # cpu against the accelerator on the lesson: weights and losses


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
        train, test = split_dataset(synthetic_dataset(params.generate), params.split)
        results[where] = fit(params.train, train, test)
    cpu, gpu = results["cpu"], results[device]
    (cpu_weight,), cpu_bias = line_coefficients(cpu.model)
    (gpu_weight,), gpu_bias = line_coefficients(gpu.model)
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
    train, test = split_dataset(synthetic_dataset(params.generate), params.split)
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
    outputs = (MODEL, TRAIN_LOG)
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
