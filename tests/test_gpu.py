"""On a machine with a GPU (cuda, else mps): what the GPU must not break. The checks are
harness/gpu_checks.py's, which `make gpu-check` runs with training timings beside them.

Without a GPU every test here is skipped, and says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.gpu_checks import (
    accelerator,
    check_agreement,
    check_checkpoint_on_cpu,
    check_repeatable,
    check_too_many_processes,
)

DEVICE = accelerator()
pytestmark = pytest.mark.skipif(DEVICE is None, reason="no GPU on this machine (cuda or mps)")


def test_cpu_and_gpu_agree_on_the_lesson():
    check = check_agreement(DEVICE)
    assert check.passed, check.detail


def test_a_gpu_checkpoint_predicts_in_a_process_without_a_gpu(tmp_path: Path):
    check = check_checkpoint_on_cpu(DEVICE, tmp_path)
    assert check.passed, check.detail


@pytest.mark.slow
def test_two_gpu_runs_are_byte_identical(tmp_path: Path):
    check = check_repeatable(DEVICE, tmp_path)
    assert check.passed, check.detail


@pytest.mark.slow
def test_more_processes_than_gpus_fail_in_one_line(tmp_path: Path):
    check = check_too_many_processes(DEVICE, tmp_path)
    assert check.passed, check.detail
