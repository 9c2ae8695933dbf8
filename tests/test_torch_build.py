"""Which torch build make installs: CPU without an NVIDIA GPU, the CUDA build the driver runs
with one, the one TORCH names, and the one the venv already holds. Nothing is downloaded."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tools.torch_build import (
    CUDA_BUILDS,
    BuildError,
    Choice,
    announcement,
    choose,
    driver_version,
    pinned_version,
)

from .helpers import ROOT

PINNED = pinned_version()
NEWEST_CUDA, NEWEST_DRIVER = CUDA_BUILDS[0]
OLDEST_CUDA, OLDEST_DRIVER = CUDA_BUILDS[-1]


def below(driver: tuple[int, ...]) -> tuple[int, ...]:
    """A driver version just older than `driver`."""
    return (driver[0] - 1, 99, 99)


def auto(driver: tuple[int, ...] | None, installed: str | None = None) -> Choice:
    return choose("", installed, PINNED, driver, "Linux")


def test_no_nvidia_gpu_gets_the_cpu_build():
    choice = auto(None)
    assert choice.build == "cpu"
    assert (
        announcement(choice)
        == f"torch: CPU build (no NVIDIA GPU found); TORCH={NEWEST_CUDA} for CUDA"
    )
    assert choice.requirement(PINNED) == f"torch=={PINNED}+cpu"


@pytest.mark.parametrize(("build", "oldest"), CUDA_BUILDS)
def test_a_driver_gets_the_newest_cuda_build_it_runs(build: str, oldest: tuple[int, ...]):
    assert auto(oldest).build == build
    assert auto(below(oldest)).build != build
    assert "NVIDIA driver" in announcement(auto(oldest))
    assert "TORCH=cpu" in announcement(auto(oldest))


def test_a_driver_too_old_for_any_cuda_build_gets_the_cpu_build_and_says_why():
    choice = auto(below(OLDEST_DRIVER))
    assert choice.build == "cpu"
    assert "older than" in choice.reason
    assert str(below(OLDEST_DRIVER)[0]) in choice.reason


@pytest.mark.parametrize("requested", ["cpu", OLDEST_CUDA, "cu126", " CU130 "])
def test_torch_names_the_build_whatever_the_machine_or_the_venv_holds(requested: str):
    for driver in (None, NEWEST_DRIVER):
        choice = choose(requested, f"{PINNED}+cpu", PINNED, driver, "Linux")
        assert choice.build == requested.strip().lower()


@pytest.mark.parametrize("requested", ["gpu", "cuda", "cu12.8", "rocm6.2", "+cpu"])
def test_a_torch_value_that_names_no_build_is_one_line(requested: str):
    with pytest.raises(
        BuildError, match=rf"TORCH={re.escape(requested.lower())}: .*allowed: cpu, auto"
    ):
        choose(requested, None, PINNED, None, "Linux")


def test_the_venv_keeps_the_build_it_holds_until_torch_asks_for_another():
    held = f"{PINNED}+{NEWEST_CUDA}"
    assert auto(None, installed=held) == Choice(NEWEST_CUDA, "installed")
    assert choose("auto", held, PINNED, None, "Linux").build == "cpu"
    # another version, or PyPI's unlabelled Linux wheel (a CUDA build), is chosen afresh
    assert auto(None, installed=f"{PINNED}.post9+{NEWEST_CUDA}").build == "cpu"
    assert auto(None, installed=PINNED).build == "cpu"


@pytest.mark.parametrize("system", ["Darwin", "Windows"])
def test_other_systems_take_pypis_build(system: str):
    choice = choose("", None, PINNED, None, system)
    assert choice.requirement(PINNED) == f"torch=={PINNED}"
    assert choose("", PINNED, PINNED, None, system).reason == "installed"


@pytest.mark.parametrize(
    ("smi_output", "proc_text", "driver"),
    [
        ("580.65.06\n580.65.06\n", None, (580, 65, 6)),  # one line a GPU
        ("", None, None),  # nvidia-smi failed: no driver talks to a GPU
        (
            None,
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar 5 2024\n",
            (550, 54, 15),
        ),
        (None, None, None),
    ],
)
def test_the_driver_version_is_read_from_nvidia_smi_or_the_kernel_module(
    smi_output: str | None, proc_text: str | None, driver: tuple[int, ...] | None
):
    assert driver_version(smi_output, proc_text) == driver


def dry_run(tmp_path: Path, smi_script: str, torch: str) -> subprocess.CompletedProcess[str]:
    """`python -m tools.torch_build --dry-run` with a stand-in nvidia-smi first on PATH."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{smi_script}\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "TORCH": torch}
    return subprocess.run(
        [sys.executable, "-m", "tools.torch_build", "--dry-run"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_make_detects_the_gpu_through_nvidia_smi_and_says_so_in_one_line(tmp_path: Path):
    smi_output = ".".join(map(str, NEWEST_DRIVER + (0,) * (3 - len(NEWEST_DRIVER))))
    driver = driver_version(smi_output, None)
    assert driver is not None
    assert auto(driver).build == NEWEST_CUDA
    result = dry_run(tmp_path, f"echo {smi_output}", "auto")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [announcement(auto(driver))]

    absent = dry_run(tmp_path, "echo 'NVIDIA-SMI has failed' >&2; exit 9", "auto")
    assert absent.stdout.splitlines() == [announcement(auto(None))]

    wrong = dry_run(tmp_path, "exit 9", "cuda")
    assert wrong.returncode == 1
    assert wrong.stdout == ""
    assert wrong.stderr.count("\n") == 1
    assert "TORCH=cuda" in wrong.stderr
