"""Where training runs: the device, and with torch.distributed the ranks (who we are, the world
size), the launcher for `train.nproc > 1` on one machine, each rank's shard of the training
data and the DistributedDataParallel wrapper.

Under `torchrun` (one machine or several nodes) the launcher is torchrun's: the environment
names our rank (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and we only join.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.multiprocessing.spawn import (
    ProcessExitedException,
    ProcessRaisedException,
    start_processes,
)
from torch.nn.parallel import DistributedDataParallel

from linreg.cli import die_with_parent
from linreg.dataset import Dataset
from linreg.errors import PipelineError


@dataclass(frozen=True)
class Ranks:
    rank: int  # 0 .. world_size - 1; rank 0 writes the outputs
    world_size: int
    local_rank: int  # this machine's GPU to use, under nccl

    @property
    def writes(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    """auto: cuda, then mps, else cpu. An explicit device that is not here is an error."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if name == "auto":
        return torch.device(next(device for device, ok in available.items() if ok))
    if not available[name]:
        here = ", ".join(device for device, ok in available.items() if ok)
        raise PipelineError(
            f"train.device = {name!r}: not available on this machine; available: {here}"
        )
    return torch.device(name)


@dataclass(frozen=True)
class Placement:
    """Where this process trains: its device and, in a process group, its rank."""

    device: torch.device
    ranks: Ranks | None = None  # None: a single process

    @property
    def rank(self) -> int:
        return self.ranks.rank if self.ranks else 0

    @property
    def writes(self) -> bool:
        """Whether this process writes the outputs and prints: rank 0, or the only one."""
        return self.ranks is None or self.ranks.writes

    def shard(self, data: Dataset) -> Dataset:
        """This rank's share of `data`; all of it for a single process."""
        if self.ranks is None:
            return data
        return data.rows(shard_rows(len(data), self.ranks))

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: under DistributedDataParallel (which averages the gradients
        over the ranks) in a process group, else the model itself."""
        return model if self.ranks is None else DistributedDataParallel(model)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over the ranks, which every rank gets."""
        if self.ranks is None:
            return value
        total = value.reshape(1)
        dist.all_reduce(total)
        return total[0] / self.ranks.world_size

    def gather(self, value: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's `value`, by rank (on the cpu), which every rank gets."""
        if self.ranks is None:
            return [value.cpu()]
        values: list[Any] = [None] * self.ranks.world_size
        dist.all_gather_object(values, value.cpu())
        return values


def placement(device: str) -> Placement:
    """train.device resolved, and this process's rank when it is in a process group: each
    rank on cuda uses its machine's GPU number local_rank."""
    resolved = resolve_device(device)
    if not dist.is_initialized():
        return Placement(resolved)
    ranks = Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if resolved.type == "cuda":
        resolved = torch.device("cuda", ranks.local_rank)
    return Placement(resolved, ranks)


def run_ranks(nproc: int, device: str, work: Callable[[], None]) -> None:
    """Run `work` as one process, or as each rank of a process group: the ranks torchrun
    started (it set our environment), or `nproc` > 1 ranks forked here."""
    if launched():  # by torchrun: it started this machine's processes already
        require_devices(local_world_size(), device, "torchrun --nproc-per-node")
        _in_group(device, work)
    elif nproc > 1:
        require_devices(nproc, device, "train.nproc")
        spawn(nproc, _in_group, device, work)
    else:
        work()


def _in_group(device: str, work: Callable[[], None]) -> None:
    join(resolve_device(device))
    try:
        work()
    finally:
        leave()


def launched() -> bool:
    """Whether a launcher (torchrun, or our spawn) started this process as one of several."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def local_world_size() -> int:
    """How many of the launched processes run on this machine (torchrun sets it)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))


def gpu_count() -> int:
    """The CUDA devices this process may use, counted without initialising CUDA (through
    NVML), so that the ranks forked afterwards can still use it."""
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    return torch.cuda.device_count()


def require_devices(
    processes: int, device: str, option: str, gpus: Callable[[], int] = gpu_count
) -> None:
    """A one-line error, before any rank starts, when `processes` ranks on this machine cannot
    each have a device of their own: more than its GPUs on cuda, more than one on mps.

    `device` is train.device (auto as resolve_device picks); `option` names the setting that
    asked for the processes.
    """
    if processes == 1 or device == "cpu":
        return
    available = gpus()
    if device == "auto":
        device = "cuda" if available else "mps" if _has_mps() else "cpu"
    if device == "mps":
        raise PipelineError(
            f"{option} = {processes}: processes cannot share the mps device; "
            "use train.nproc: 1, or train.device: cpu"
        )
    if device == "cuda" and processes > available:
        at_most = f"at most {available}, or " if available else ""
        raise PipelineError(
            f"{option} = {processes}: each process needs a GPU of its own and this machine "
            f"has {available}; use {at_most}train.device: cpu"
        )


def _has_mps() -> bool:
    return torch.backends.mps.is_available()


def join(device: torch.device) -> None:
    """Join the process group the environment describes: gloo on the cpu, nccl on cuda."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method="env://")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def spawn(nproc: int, function: Callable[..., None], *args: Any) -> None:
    """Run function(*args) in `nproc` processes on this machine, as torchrun would start them.

    If one fails, the others are stopped and the failure is one line naming the rank.
    """
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    # torch logs each rank it stops; the one line below says what matters
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    # fork, not spawn: the ranks start in milliseconds instead of importing torch again, and
    # this process has run no torch computation (no thread pool) that forking would break
    ranks = start_processes(
        _rank_main, args=(nproc, function, args), nprocs=nproc, join=False, start_method="fork"
    )
    try:
        while not ranks.join():  # raises when a rank fails, after stopping the others
            pass
    except ProcessRaisedException as error:
        # the rank's traceback, whose last line is "module.Error: message"
        last = str(error).strip().splitlines()[-1]
        message = last.split(": ", 1)[1] if last.startswith("linreg.errors.") else last
        raise PipelineError(f"train rank {error.error_index}: {message}") from None
    except ProcessExitedException as error:
        raise PipelineError(
            f"train rank {error.error_index}: {error}; the other ranks were stopped"
        ) from None
    finally:
        # also when we are stopped ourselves (Ctrl-C, SIGTERM): no rank outlives the stage
        for process in ranks.processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _rank_main(rank: int, nproc: int, function: Callable[..., None], args: tuple[Any, ...]) -> None:
    # forked from a stage process: SIGTERM (how a failed rank's siblings are stopped) ends a
    # rank quietly; the stage process reports the failure once
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()  # and a rank whose stage process was killed outright ends too
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank))
    # share the cores instead of each rank running a thread per core (torchrun does the same
    # through OMP_NUM_THREADS)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    function(*args)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def shard_rows(rows: int, ranks: Ranks) -> np.ndarray:
    """This rank's rows, as DistributedSampler(shuffle=False, drop_last=False) picks them:
    every world_size-th row from `rank`, after padding the rows to a multiple of the world
    size by repeating the first ones, so that every shard has the same size."""
    padded = -(-rows // ranks.world_size) * ranks.world_size
    return np.arange(ranks.rank, padded, ranks.world_size) % rows
