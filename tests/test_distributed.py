"""Training on several processes: shards, the same weights as one process, failures that
stop every rank, and torchrun."""

from __future__ import annotations

import io
import shlex
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from linreg.distributed import Ranks, require_devices, shard_rows
from linreg.errors import PipelineError

from .helpers import STAGE_COMMANDS, run, set_param, start_training

TRAIN_COMMAND = STAGE_COMMANDS["train"]


@pytest.mark.parametrize(("rows", "world_size"), [(40, 2), (41, 2), (10, 3), (2, 4)])
def test_shards_are_equal_cover_every_row_and_pad_with_the_first(rows, world_size):
    shards = [shard_rows(rows, Ranks(rank, world_size, rank)) for rank in range(world_size)]
    assert len({len(shard) for shard in shards}) == 1  # equal sizes
    every = np.concatenate(shards)
    assert set(every.tolist()) == set(range(rows))
    padding = len(every) - rows
    assert sorted(every.tolist()) == sorted(list(range(rows)) + list(range(padding)))


def test_shards_take_every_world_size_th_row_as_distributed_sampler_does():
    shards = [shard_rows(10, Ranks(rank, 3, rank)).tolist() for rank in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]  # padded with rows 0 and 1


def train_stage(
    project: Path, *launcher: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The train stage's own command, or the same script under a launcher such as torchrun."""
    if launcher:
        script_and_paths = shlex.split(TRAIN_COMMAND)[2:]  # drop PYTHONPATH=src python
        return run(project, "env", "PYTHONPATH=src", *launcher, *script_and_paths, check=check)
    return run(project, "env", *shlex.split(TRAIN_COMMAND), check=check)


def checkpoint(project: Path) -> dict:
    return torch.load(project / "models/model.pt", weights_only=True)


def zip_names(project: Path) -> list[str]:
    with zipfile.ZipFile(io.BytesIO((project / "models/model.pt").read_bytes())) as archive:
        return archive.namelist()


@pytest.mark.slow
def test_two_processes_learn_the_same_weights_as_one(project: Path):
    one, names = checkpoint(project), zip_names(project)  # nproc 1, as reproduced
    set_param(project, "train.nproc", 2)

    output = train_stage(project).stdout

    two = checkpoint(project)
    assert two["model"] == one["model"]
    assert list(two["state_dict"]) == list(one["state_dict"])  # no "module." prefix
    for name, value in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][name], value, atol=1e-6, rtol=0)
    assert zip_names(project) == names  # the same checkpoint format
    assert output.count("epoch ") == 10  # rank 0 alone logs


@pytest.mark.slow
def test_torchrun_starts_the_same_stage(project: Path):
    one = checkpoint(project)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    train_stage(project, torchrun, "--standalone", "--nproc-per-node=2")
    for name, value in one["state_dict"].items():
        torch.testing.assert_close(
            checkpoint(project)["state_dict"][name], value, atol=1e-6, rtol=0
        )


@pytest.mark.slow
def test_mini_batches_on_two_processes_learn_comparably(project: Path):
    set_param(project, "train.batch_size", 8)
    set_param(project, "train.momentum", 0.9)
    train_stage(project)
    one = np.loadtxt(project / "reports/train_log.csv", delimiter=",", skiprows=1)
    set_param(project, "train.nproc", 2)
    train_stage(project)
    two = np.loadtxt(project / "reports/train_log.csv", delimiter=",", skiprows=1)
    assert two[-1, 2] < two[0, 2] / 5  # the test loss falls
    assert two[-1, 2] < 2 * one[-1, 2] + 0.01  # about as far as on one process


@pytest.mark.slow
def test_a_failing_rank_fails_the_stage_in_one_line(project: Path):
    set_param(project, "train.nproc", 2)
    set_param(project, "train.lr", 1e6)
    set_param(project, "train.loss", "mse")
    result = train_stage(project, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: train rank ")
    assert "training diverged at epoch" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.slow
def test_a_killed_rank_stops_every_process(project: Path):
    set_param(project, "train.nproc", 2)
    set_param(project, "train.epochs", 1_000_000)
    process = start_training(project)
    stage = psutil.Process(process.pid)
    family = stage.children(recursive=True)
    ranks = [child for child in family if child.ppid() == process.pid]
    assert len(ranks) == 2

    ranks[1].send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == 1
    assert process.stderr is not None
    message = process.stderr.read()
    assert message.startswith("error: train rank 1: process 1 terminated with signal SIGKILL")
    assert len(message.splitlines()) == 1
    deadline = time.monotonic() + 10
    while any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in family):
        assert time.monotonic() < deadline, [child.pid for child in family if child.is_running()]
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("processes", "device", "gpus", "message"),
    [
        (2, "cpu", 0, None),
        (1, "cuda", 1, None),
        (2, "cuda", 2, None),
        (2, "auto", 0, None),  # no GPU (and no mps here): auto is the cpu
        (
            2,
            "auto",
            1,
            "train.nproc = 2: each process needs a GPU of its own and this machine has 1; "
            "use at most 1, or train.device: cpu",
        ),
        (
            3,
            "cuda",
            2,
            "train.nproc = 3: each process needs a GPU of its own and this machine has 2; "
            "use at most 2, or train.device: cpu",
        ),
        (
            2,
            "cuda",
            0,
            "train.nproc = 2: each process needs a GPU of its own and this machine has 0; "
            "use train.device: cpu",
        ),
        (
            2,
            "mps",
            0,
            "train.nproc = 2: processes cannot share the mps device; "
            "use train.nproc: 1, or train.device: cpu",
        ),
    ],
)
def test_processes_need_a_gpu_each(processes, device, gpus, message, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    if message is None:
        require_devices(processes, device, "train.nproc", gpus=lambda: gpus)
    else:
        with pytest.raises(PipelineError) as error:
            require_devices(processes, device, "train.nproc", gpus=lambda: gpus)
        assert str(error.value) == message
