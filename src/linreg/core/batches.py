"""How the loop takes an epoch's rows: the whole train set as one update (full batch), or seeded
mini-batches; and each update in pieces small enough to compute a loss and its gradient in
bounded memory, whose losses add up to the update's."""

from __future__ import annotations

import hashlib
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
# full batch: 21 ns a row at once, 7 ns in pieces, and half the peak memory). The fused pass
# (core/fused.py) takes its chunks of this size too: x, y, the residual and the gradient of a
# chunk of the k = 1 model take 16 MiB in float32, within the L3 cache, and each op has a fixed
# cost of a few microseconds (at 8 M rows, l1, 2 cores: 2^16 rows a chunk ran at 0.76 G rows/s,
# 2^18 at 1.28, 2^20 at 1.46).
CHUNK_ROWS = 1 << 20
# Mini-batches are drawn a block of about this many consecutive rows at a time (a whole number
# of batches): the rows a batch takes are gathered from one block, 1 MiB a float32 column, in
# a core's cache, instead of from anywhere in the set (block_orders says what that changes).
# At 8 M rows, batches of 65,536, an epoch ran at 23 M rows/s with one permutation of all the
# rows, and with blocks of 2^17 rows at 138, 2^18 124, 2^20 80, 2^23 28.
SHUFFLE_ROWS = 1 << 18


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
    batch: one update, of the mean loss times this rank's weight), or shuffled mini-batches of
    train.batch_size rows (block_orders); and the epoch's train loss from the losses the loop
    adds."""

    def __init__(self, params: TrainParams, data: Placed) -> None:
        self.size, self.seed, self.data = params.batch_size, params.seed, data
        self.losses: list[torch.Tensor] = []  # each update's loss this epoch
        self.rows: list[int] = []  # and its rows
        self._update_loss: torch.Tensor | None = None

    def epoch(self, epoch: int) -> Iterator[Update]:
        """Epoch `epoch`'s updates; the loop adds each one's loss (add) before it takes the
        next."""
        self.losses, self.rows = [], []
        for update in self._updates(epoch):
            self._update_loss = None
            yield update
            assert self._update_loss is not None, "the loop adds each update's loss"
            self.losses.append(self._update_loss)
            self.rows.append(len(update))

    def _updates(self, epoch: int) -> Iterator[Update]:
        (x, y), trained = self.data.train, self.data.trained
        if not self.size:
            yield Update(x, y, self.data.weight, trained)
            return
        block_rows = self.size * max(1, SHUFFLE_ROWS // self.size)  # whole batches a block
        where = self.data.where
        for rows in block_orders(len(x), block_rows, (self.seed, epoch, where.rank), x.device):
            # the block's rows gathered once, in cache, then contiguous slices of it
            block_x, block_y = _gathered(x, rows), _gathered(y, rows)
            for start in range(0, len(rows), self.size):
                batch = slice(start, start + self.size)
                yield Update(block_x[batch], block_y[batch], 1.0, trained)

    def add(self, loss: torch.Tensor) -> None:
        """A piece's loss, or a whole update's (computed before the step), into its update's."""
        piece = loss.detach()
        self._update_loss = piece if self._update_loss is None else self._update_loss + piece

    def mean_loss(self) -> torch.Tensor:
        """The epoch's train loss on this rank: full batch, the update's; mini-batches, the
        row-weighted mean of theirs."""
        if not self.size:
            return self.losses[0]
        # weighted by rows once per epoch, not with two more small kernels per batch
        losses = torch.stack(self.losses)
        rows = torch.tensor(self.rows, dtype=losses.dtype, device=losses.device)
        mean: torch.Tensor = torch.dot(losses, rows) / sum(self.rows)
        return mean


def block_orders(
    rows: int, block_rows: int, key: tuple[int, int, int], device: torch.device
) -> Iterator[torch.Tensor]:
    """An epoch's order of `rows` rows, a block at a time: the blocks of `block_rows`
    consecutive rows (the last may be shorter) in a random order, and the rows of each block
    in a random order, the same for every block of full size. Drawn from a generator seeded by
    `key` (train.seed, the epoch, the rank) alone, on `device`: any run re-derives any epoch's
    order, whatever came before it. On the cpu, int32 indices: half the cost of int64."""
    generator = torch.Generator(device).manual_seed(_seed_of(key))
    dtype = torch.int32 if device.type == "cpu" else torch.int64
    blocks = -(-rows // block_rows)
    last = rows - (blocks - 1) * block_rows  # the last block's rows
    order = torch.randperm(blocks, generator=generator, device=device).tolist()
    shuffles = {
        size: torch.randperm(size, generator=generator, dtype=dtype, device=device)
        for size in dict.fromkeys([block_rows] * (blocks > 1) + [last])
    }
    for block in order:
        within = shuffles[last if block == blocks - 1 else block_rows]
        yield within + block * block_rows


def _gathered(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """values[rows] for (n, k) values: a column gathered as the vector it is, twice as fast."""
    if values.shape[1] == 1:
        return values.view(-1).index_select(0, rows).unsqueeze(1)
    return values.index_select(0, rows)


def _seed_of(key: tuple[int, int, int]) -> int:
    """A 64-bit seed from (seed, epoch, rank), well mixed: neighbouring keys draw unrelated
    orders."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")
