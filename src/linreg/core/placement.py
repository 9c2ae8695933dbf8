"""Where the loop's tensors live: the device and, with torch.distributed, the ranks of a process
group (who we are, the world size), each rank's shard of the training data (made from the parts
the ranks read), the DistributedDataParallel wrapper and the collectives the loop needs. Joining
and leaving the group is here too; starting the processes is linreg.runtime.launcher's.

Under `torchrun` (one machine or several nodes) the environment names our rank (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and we only join.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from linreg.core.dataset import Dataset
from linreg.core.errors import PipelineError
from linreg.core.model import Scaling, Standardized
from linreg.core.params import TrainParams

T = TypeVar("T")

# Collectives over cpu data (row counts, the rows that make the shards, resume points): the
# process group itself under gloo; under nccl, which moves GPU tensors only, a gloo group of
# the same ranks beside it (join).
_cpu_group: dist.ProcessGroup | None = None


@dataclass(frozen=True)
class Ranks:
    rank: int  # 0 .. world_size - 1
    world_size: int
    local_rank: int  # 0 .. the ranks on this machine - 1; its GPU to use, under nccl

    @property
    def writes(self) -> bool:
        """The first rank of each machine writes the outputs and prints: every rank holds the
        same model and losses, so each machine gets the same bytes, and the machine where DVC
        records them has them whichever one a c10d rendezvous made rank 0."""
        return self.local_rank == 0


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
        """Whether this process writes the outputs and prints: the first rank on its machine
        (Ranks.writes), or the only one."""
        return self.ranks is None or self.ranks.writes

    @property
    def world_size(self) -> int:
        return self.ranks.world_size if self.ranks else 1

    def balanced(self, part: Dataset, padded: bool) -> Dataset:
        """This rank's shard, from the ranks' parts (consecutive runs of rows, rank 0's first,
        of any sizes). `padded` (mini-batches, where every rank must take the same steps): the
        rank-th of world_size consecutive runs of all the rows, all of size ceil(rows /
        world_size), the last padded with the first rows again, as DistributedSampler pads;
        the ranks send each other the rows their parts hold for other shards. Full batch: the
        part itself, each row once, no copy (weight makes the ranks' average gradient the
        mean over all the rows, whatever the parts' sizes), unless a part has no rows: then
        shards whose sizes differ by a row at most."""
        if self.ranks is None:
            return part
        counts = self.gather(len(part))
        if not padded and min(counts) > 0:
            return part
        # fewer rows than ranks: padded all the same, for a shard of no rows has no mean loss
        plan = shard_plan(counts, padded or sum(counts) < len(counts))
        size = shard_size(plan, self.rank)
        x, y = np.empty((size, part.x.shape[1]), part.x.dtype), np.empty(size, part.y.dtype)
        messages, received = [], []
        for tag, move in enumerate(plan):
            rows, into = slice(move.start, move.stop), slice(move.at, move.at + len(move))
            if move.source == move.target == self.rank:
                x[into], y[into] = part.x[rows], part.y[rows]
            elif move.source == self.rank:  # (rows, k + 1): one message per transfer
                sent = torch.from_numpy(np.column_stack([part.x[rows], part.y[rows]]))
                messages.append(dist.P2POp(dist.isend, sent, move.target, _cpu_group, tag))
            elif move.target == self.rank:
                buffer = torch.from_numpy(np.empty((len(move), x.shape[1] + 1), x.dtype))
                received.append((into, buffer))
                messages.append(dist.P2POp(dist.irecv, buffer, move.source, _cpu_group, tag))
        for request in dist.batch_isend_irecv(messages) if messages else []:
            request.wait()
        for into, buffer in received:
            x[into], y[into] = buffer[:, :-1].numpy(), buffer[:, -1].numpy()
        return Dataset(x, y, part.features, part.target)

    def weight(self, rows: int) -> float:
        """This rank's `rows` times the world size, over every rank's: a rank's mean loss times
        its weight makes DistributedDataParallel's average of the ranks' gradients the mean over
        all the rows, whatever the shards' sizes; exactly 1.0 when they are all the same."""
        if self.ranks is None:
            return 1.0
        return rows * self.ranks.world_size / float(self.total(np.array(rows, np.float64)))

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: under DistributedDataParallel (which averages the gradients
        over the ranks) in a process group, else the model itself."""
        return model if self.ranks is None else DistributedDataParallel(model)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over the ranks of a tensor (a loss; a gradient computed without
        DistributedDataParallel, averaged as it would), which every rank gets."""
        if self.ranks is None:
            return values
        total = values.reshape(-1).clone()  # all_reduce sums in place, a vector at least
        dist.all_reduce(total)
        return (total / self.ranks.world_size).view_as(values)

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

    def largest(self, values: Sequence[int]) -> list[int]:
        """The largest of each of `values` over the ranks (small integers), which every rank
        gets: one collective for several answers."""
        if self.ranks is None:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.int64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=_cpu_group)
        return [int(value) for value in tensor.tolist()]

    def broadcast(self, value: T, source: int) -> T:
        """Rank `source`'s `value` (a picklable cpu object), which every rank gets."""
        if self.ranks is None:
            return value
        values: list[Any] = [value if self.ranks.rank == source else None]
        dist.broadcast_object_list(values, src=source, group=_cpu_group)
        return values[0]  # type: ignore[no-any-return]

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


def shard_plan(counts: Sequence[int], padded: bool) -> list[Transfer]:
    """The moves that turn parts of counts[rank] consecutive rows (rank 0's first) into shards
    of consecutive rows (Placement.balanced): equal ones whose padding wraps around to row 0,
    or, not `padded`, ones whose sizes differ by a row at most."""
    rows, world_size = sum(counts), len(counts)
    if rows == 0:
        raise PipelineError("the train set has no rows")
    size = -(-rows // world_size)
    starts = np.cumsum([0, *counts]).tolist()  # each part's first row of all
    plan = []
    for target in range(world_size):
        if padded:
            begin, end = target * size, (target + 1) * size
        else:
            begin, end = target * rows // world_size, (target + 1) * rows // world_size
        at = 0
        while at < end - begin:  # at most twice: up to the last row, then from row 0 again
            first = (begin + at) % rows
            length = min(end - begin - at, rows - first)
            for source in range(world_size):
                low, high = max(first, starts[source]), min(first + length, starts[source + 1])
                if low < high:
                    start, stop = low - starts[source], high - starts[source]
                    plan.append(Transfer(source, target, start, stop, at + low - first))
            at += length
    return plan


def shard_size(plan: Sequence[Transfer], rank: int) -> int:
    """The rows of rank `rank`'s shard that `plan` makes."""
    return sum(len(move) for move in plan if move.target == rank)


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


@dataclass(frozen=True)
class Placed:
    """The loop's data where it trains: this rank's shard of the train set and its part of the
    test set, as tensors on the device (in standardised units with train.standardize), and the
    model to train there (DistributedDataParallel's wrapper in a process group). For a single
    process: the sets and the model as they are, on the device."""

    where: Placement
    trained: nn.Module
    train: tuple[torch.Tensor, torch.Tensor]  # x (n, k), y (n, 1)
    test: tuple[torch.Tensor, torch.Tensor]
    scaling: Scaling | None
    weight: float  # Placement.weight of this rank's train shard
    test_share: float  # this rank's test rows, as a share of every rank's

    @property
    def device(self) -> torch.device:
        return self.where.device

    def over_ranks(
        self, train_loss: torch.Tensor, test_loss: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """An epoch's losses over every rank's rows (each rank's own in a single process): the
        same on every rank, so that all stop together if the training diverges."""
        return self.where.mean(train_loss), self.where.pooled(test_loss, self.test_share)

    def fitted(self, model: nn.Module) -> nn.Module:
        """The trained `model` on the cpu, used in the data's own units."""
        model = model.cpu()
        return Standardized(model, self.scaling) if self.scaling else model


def place(params: TrainParams, model: nn.Module, train: Dataset, test: Dataset) -> Placed:
    """`model` on train.device and the data with it, in train.dtype; in a process group, this
    rank's balanced shard of the train set (from the ranks' parts) and its part of the test set,
    and the model under DistributedDataParallel."""
    where = placement(params.device)
    train, test = (data.astype(np.dtype(params.dtype)) for data in (train, test))
    # every rank scales by the whole train set's statistics, from the parts (each row once)
    scaling = standard_scaling(train, where.total) if params.standardize else None
    train = where.balanced(train, padded=params.batch_size > 0)
    test_share = where.part_share(len(test))
    model.to(where.device)
    trained = where.wrap(model)  # the test loss uses the plain module
    standardized = Standardized(model, scaling).to(where.device) if scaling else None
    train_tensors = as_tensors(train, where.device, standardized)
    test_tensors = as_tensors(test, where.device, standardized)
    weight = where.weight(len(train))  # full-batch shards may differ by a row
    return Placed(where, trained, train_tensors, test_tensors, scaling, weight, test_share)


def as_column(values: np.ndarray, device: torch.device) -> torch.Tensor:
    """(n,) numpy array -> (n, 1) tensor on `device`, without a copy on the cpu."""
    return torch.from_numpy(values).unsqueeze(1).to(device)


def as_tensors(
    data: Dataset, device: torch.device, standardized: Standardized | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, k) x and (n, 1) y on `device`, in standardised units when `standardized` is given."""
    x, y = torch.from_numpy(data.x).to(device), as_column(data.y, device)
    if standardized is None:
        return x, y
    return standardized.scale_x(x), standardized.scale_y(y)


def standard_scaling(train: Dataset, total: Callable[[np.ndarray], np.ndarray]) -> Scaling:
    """The train set's feature and target means and standard deviations (computed in float64,
    kept in the data's dtype); a constant column cannot be standardised and is an error. In a
    process group `train` is this rank's part, and `total` sums over the ranks
    (Placement.total)."""
    kept = train.x.dtype.type
    x, y = train.x.astype(np.float64), train.y.astype(np.float64)
    rows = total(np.array(len(train), np.float64))
    # numpy's mean and std, op for op, of the rows of every part
    x_mean, y_mean = total(x.sum(axis=0)) / rows, total(y.sum()) / rows
    x_std = np.sqrt(total(((x - x_mean) ** 2).sum(axis=0)) / rows)
    y_std = float(np.sqrt(total(((y - y_mean) ** 2).sum()) / rows))
    for name, std in [*zip(train.features, x_std, strict=True), (train.target, y_std)]:
        if not kept(std) > 0:
            raise PipelineError(
                f"train.standardize = true: column {name!r} is constant in the train set "
                "(standard deviation 0): standardising it would divide by zero; drop the "
                "column or set train.standardize: false"
            )
    return Scaling(
        x_mean=x_mean.astype(kept),
        x_std=x_std.astype(kept),
        y_mean=float(kept(y_mean)),
        y_std=float(kept(y_std)),
    )
