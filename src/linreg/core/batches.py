"""How the loop takes an epoch's rows: the whole train set as one update (full batch), or seeded
mini-batches; and each update in pieces small enough to compute a loss and its gradient in
bounded memory, whose losses add up to the update's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from linreg.core.params import TrainParams
from linreg.core.placement import Placed

# The most rows a loss and its gradient are computed over in one go. A larger update adds them
# up piece by piece: temporaries of a few MiB that the allocator reuses, not fresh gigabyte
# blocks that the C library maps, page-faults, zeroes and returns every epoch (8 * 10^7 rows,
# full batch: 21 ns a row at once, 7 ns in pieces, and half the peak memory).
CHUNK_ROWS = 1 << 20


def pieces(
    x: torch.Tensor, y: torch.Tensor, weight: float = 1.0, model: nn.Module | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """(x, y, share) of at most CHUNK_ROWS rows each: the pieces' mean losses times their shares
    add up to the mean loss of all the rows times `weight` (Placement.weight). Under
    DistributedDataParallel (`model`) every piece but the last keeps its gradient on this rank,
    and the last one's backward averages the sum over the ranks once."""
    rows = len(x)
    if rows <= CHUNK_ROWS:  # the lesson's update, op for op
        yield x, y, weight
        return
    for start in range(0, rows, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, rows)
        quiet = model.no_sync() if isinstance(model, DDP) and stop < rows else nullcontext()
        with quiet:
            yield x[start:stop], y[start:stop], (stop - start) / rows * weight


@dataclass(frozen=True)
class Update:
    """One optimizer step's rows: x (n, k) and y (n, 1), whose mean loss counts `weight` times
    (Placement.weight), trained by `trained` (DistributedDataParallel's wrapper, in a process
    group)."""

    x: torch.Tensor
    y: torch.Tensor
    weight: float
    trained: nn.Module

    def __len__(self) -> int:
        return len(self.x)

    def pieces(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        return pieces(self.x, self.y, self.weight, self.trained)


class Batches:
    """One epoch's updates as the loop takes them, each in pieces: the whole train set (full
    batch: one update, of the mean loss times this rank's weight), or seeded mini-batches of
    train.batch_size rows; and the epoch's train loss from the losses the loop adds."""

    def __init__(self, params: TrainParams, data: Placed) -> None:
        self.size, self.data, self.rank = params.batch_size, data, data.where.rank
        # each rank shuffles its own shard in its own order, drawn where the data is (drawn on
        # the cpu and copied to a GPU every epoch, it would cost more than the epoch itself)
        self.order = torch.Generator(data.device).manual_seed(params.seed + self.rank)
        # (n, k + 1): mini-batches shuffle x and y in one gather
        self.xy = torch.cat([*data.train], dim=1) if self.size else None
        self.losses: list[torch.Tensor] = []  # each update's loss this epoch
        self._update_loss: torch.Tensor | None = None

    def epoch(self) -> Iterator[Update]:
        """This epoch's updates; the loop adds each one's loss (add) before it takes the next."""
        self.losses = []
        for update in self._updates():
            self._update_loss = None
            yield update
            assert self._update_loss is not None, "the loop adds each update's loss"
            self.losses.append(self._update_loss)

    def _updates(self) -> Iterator[Update]:
        trained = self.data.trained
        if self.xy is None:
            yield Update(*self.data.train, self.data.weight, trained)
            return
        # One gather per epoch, then contiguous slices: far faster than gathering every batch.
        # On the cpu, int32 indices: the same permutation as int64 from the same generator, at
        # half the cost. Each device draws its own permutation: cpu and cuda see other batches.
        xy = self.xy
        dtype = torch.int32 if xy.device.type == "cpu" else torch.int64
        order = torch.randperm(len(xy), generator=self.order, dtype=dtype, device=xy.device)
        shuffled = xy.index_select(0, order)
        for start in range(0, len(shuffled), self.size):
            batch = shuffled[start : start + self.size]
            yield Update(batch[:, :-1], batch[:, -1:], 1.0, trained)

    def add(self, loss: torch.Tensor) -> None:
        """A piece's loss, or a whole update's (computed before the step), into its update's."""
        piece = loss.detach()
        self._update_loss = piece if self._update_loss is None else self._update_loss + piece

    def mean_loss(self) -> torch.Tensor:
        """The epoch's train loss on this rank: full batch, the update's; mini-batches, the
        row-weighted mean of theirs (every batch has train.batch_size rows but the last)."""
        if self.xy is None:
            return self.losses[0]
        # weighted by rows once per epoch, not with two more small kernels per batch
        xy = self.xy
        rows = torch.full((len(self.losses),), float(self.size), dtype=xy.dtype, device=xy.device)
        rows[-1] = len(xy) - self.size * (len(self.losses) - 1)
        mean: torch.Tensor = torch.dot(torch.stack(self.losses), rows) / len(xy)
        return mean

    def orders(self) -> list[torch.Tensor]:
        """Every rank's batch order, by rank (a collective); none full batch."""
        return self.data.where.gather(self.order.get_state()) if self.size else []
