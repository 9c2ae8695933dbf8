"""Where training runs: the device, and with torch.distributed the ranks (who we are, the world
size), the launcher for `train.nproc > 1` on one machine, each rank's shard of the training
data (made from the parts the ranks read) and the DistributedDataParallel wrapper.

Under `torchrun` (one machine or several nodes) the launcher is torchrun's: the environment
names our rank (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and we only join.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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

T = TypeVar("T")

# Collectives over cpu data (row counts, the rows that make the shards, resume points): the
# process group itself under gloo; under nccl, which moves GPU tensors only, a gloo group of
# the same ranks beside it (join).
_cpu_group: dist.ProcessGroup | None = None


@dataclass(frozen=True)
class Ranks:
    rank: int  # 0 .. world_size - 1; rank 0 writes the outputs
    world_size: int
    local_rank: int  # this machine's GPU to use, under nccl

    @property
    def writes(self) -> bool:
        return self.rank == 0


def devices_here(cuda: bool | None = None) -> dict[str, bool]:
    """Which devices this machine has (`cuda` if already known), in the order in which
    train.device: auto takes the first it has (auto_device)."""
    if cuda is None:
        cuda = torch.cuda.is_available()
    return {"cuda": cuda, "mps": torch.backends.mps.is_available(), "cpu": True}


def auto_device(here: dict[str, bool]) -> str:
    return next(device for device, ok in here.items() if ok)


def resolve_device(name: str) -> torch.device:
    """auto: cuda, then mps, else cpu. An explicit device that is not here is an error."""
    available = devices_here()
    if name == "auto":
        return torch.device(auto_device(available))
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

    @property
    def world_size(self) -> int:
        return self.ranks.world_size if self.ranks else 1

    def part(self, data: Dataset) -> Dataset:
        """This rank's part of `data` held in memory: the rank-th of world_size consecutive
        runs of rows (all of it for a single process). A rank reading a file reads its part of
        the lines instead (dataset.read_split)."""
        rows = len(data) * np.arange(self.rank, self.rank + 2) // self.world_size
        return data.rows(slice(*rows))

    def balanced(self, part: Dataset) -> Dataset:
        """This rank's shard, from the ranks' parts (consecutive runs of rows, rank 0's first,
        of any sizes): rows rank * size .. (rank + 1) * size - 1 of all, size = ceil(rows /
        world_size), so that every rank takes the same steps. The last shards are padded with
        the first rows again, as DistributedSampler pads. The ranks send each other the rows
        their parts hold for other shards."""
        if self.ranks is None:
            return part
        plan = shard_plan(self.gather(len(part)))
        xy = np.column_stack([part.x, part.y])  # (n, k + 1): one message per transfer
        shard = np.empty((shard_size(plan), xy.shape[1]), np.float32)
        messages = []
        for tag, move in enumerate(plan):
            rows, into = slice(move.start, move.stop), slice(move.at, move.at + len(move))
            if move.source == move.target == self.rank:
                shard[into] = xy[rows]
            elif move.source == self.rank:
                sent = torch.from_numpy(np.ascontiguousarray(xy[rows]))
                messages.append(dist.P2POp(dist.isend, sent, move.target, _cpu_group, tag))
            elif move.target == self.rank:
                received = torch.from_numpy(shard[into])
                messages.append(dist.P2POp(dist.irecv, received, move.source, _cpu_group, tag))
        for request in dist.batch_isend_irecv(messages) if messages else []:
            request.wait()
        return Dataset(
            np.ascontiguousarray(shard[:, :-1]), shard[:, -1].copy(), part.features, part.target
        )

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

    def pooled(self, value: torch.Tensor, share: float) -> torch.Tensor:
        """The mean over every rank's rows of a scalar mean over this rank's part of them,
        `share` of the rows (part_share); every rank gets it."""
        if self.ranks is None:
            return value
        total = (value * share if share else torch.zeros_like(value)).reshape(1)
        dist.all_reduce(total)
        return total[0]

    def total(self, values: np.ndarray) -> np.ndarray:
        """The float64 sum of `values` over the ranks, which every rank gets."""
        if self.ranks is None:
            return values
        summed = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(summed, group=_cpu_group)
        return summed.numpy()

    def part_share(self, rows: int) -> float:
        """This rank's `rows` as a share of every rank's."""
        return rows / float(self.total(np.array(rows, np.float64))) if self.ranks else 1.0

    def gather(self, value: T) -> list[T]:
        """Every rank's `value` (a picklable cpu object), by rank, which every rank gets."""
        if self.ranks is None:
            return [value]
        values: list[Any] = [None] * self.ranks.world_size
        dist.all_gather_object(values, value, group=_cpu_group)
        return values


@dataclass(frozen=True)
class Transfer:
    """Rows start .. stop - 1 of rank `source`'s part go to rank `target`'s shard, from its row
    `at` on."""

    source: int
    target: int
    start: int
    stop: int
    at: int

    def __len__(self) -> int:
        return self.stop - self.start


def shard_plan(counts: Sequence[int]) -> list[Transfer]:
    """The moves that turn parts of counts[rank] consecutive rows (rank 0's first) into equal
    shards of consecutive rows (Placement.balanced), the padding wrapping around to row 0."""
    rows, world_size = sum(counts), len(counts)
    if rows == 0:
        raise PipelineError("the train set has no rows")
    size = -(-rows // world_size)
    starts = np.cumsum([0, *counts]).tolist()  # each part's first row of all
    plan = []
    for target in range(world_size):
        at = 0
        while at < size:  # at most twice: up to the last row, then from row 0 again
            first = (target * size + at) % rows
            length = min(size - at, rows - first)
            for source in range(world_size):
                low, high = max(first, starts[source]), min(first + length, starts[source + 1])
                if low < high:
                    start, stop = low - starts[source], high - starts[source]
                    plan.append(Transfer(source, target, start, stop, at + low - first))
            at += length
    return plan


def shard_size(plan: Sequence[Transfer]) -> int:
    """The rows of each shard that `plan` makes."""
    return sum(len(move) for move in plan if move.target == 0)


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


def require_cores(processes: int, option: str, cores: int | None = None) -> None:
    """A one-line error, before any rank starts, when `processes` exceed this machine's cores
    (`cores`; os.cpu_count() by default): more ranks only slow each other down, each holds
    its data, and a typo'd 1000 would fork until the machine refuses. A machine's limit, so
    checked when the train stage starts, not where params are validated. (run_ranks itself
    forks as many as it is asked for: the tests run 3 ranks on 2 cores.)"""
    cores = cores or os.cpu_count() or 1
    if processes > cores:
        raise PipelineError(
            f"{option} = {processes}: more processes than this machine's {cores} cores; "
            f"use at most {cores}"
        )


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
        device = auto_device(devices_here(cuda=available > 0))
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


def join(device: torch.device) -> None:
    """Join the process group the environment describes: gloo on the cpu, nccl on cuda."""
    global _cpu_group
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method="env://")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        _cpu_group = dist.new_group(backend="gloo")


def leave() -> None:
    global _cpu_group
    if dist.is_initialized():
        dist.destroy_process_group()
    _cpu_group = None


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
    except (ProcessRaisedException, EOFError) as error:  # EOFError: torch read a rank's
        # error file while that rank, stopped, was still writing it
        rank, last = failed_rank(ranks.error_files, error)
        message = last.split(": ", 1)[1] if last.startswith("linreg.errors.") else last
        raise PipelineError(f"train rank {rank}: {message}") from None
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


def failed_rank(
    error_files: list[str], error: ProcessRaisedException | EOFError
) -> tuple[int, str]:
    """The failed rank to report, and its traceback's last line ("module.Error: message"):
    the first rank that raised one of our own errors (a bad line in its part of the data),
    not one that failed because that rank had gone (its peer closed the connection), which
    torch may have seen first; else the rank torch reports. A rank that raised wrote its
    traceback to its error file."""
    seen = error.error_index if isinstance(error, ProcessRaisedException) else 0
    last_lines = {seen: (str(error).strip().splitlines() or ["a rank failed"])[-1]}
    for rank, path in enumerate(error_files):
        if os.access(path, os.R_OK) and os.path.getsize(path):
            with open(path, "rb") as file:
                try:
                    last_lines[rank] = str(pickle.load(file)).strip().splitlines()[-1]
                except EOFError:  # still being written
                    continue
    ours = sorted(rank for rank, last in last_lines.items() if last.startswith("linreg.errors."))
    rank = ours[0] if ours else seen
    return rank, last_lines[rank]


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
