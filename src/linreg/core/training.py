"""The lesson's training loop: forward, loss, zero_grad, backward, step; then the test loss.
The machinery around it (resume points, signals, the live log) hooks in at the end of an epoch
through a Run (linreg.runtime.training_run); the loop itself knows nothing of files."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from linreg.core.dataset import Dataset
from linreg.core.errors import PipelineError
from linreg.core.model import Model, Scaling, Standardized, build_model
from linreg.core.params import TrainParams
from linreg.core.placement import placement
from linreg.core.records import TrainLog

LOSSES: dict[str, type[nn.Module]] = {"l1": nn.L1Loss, "mse": nn.MSELoss, "huber": nn.HuberLoss}

# The most rows a loss and its gradient are computed over in one go. A larger step sums them
# chunk by chunk: temporaries of a few MiB that the allocator reuses, not fresh gigabyte
# blocks that the C library maps, page-faults, zeroes and returns every epoch (8 * 10^7 rows,
# full batch: 21 ns a row at once, 7 ns in chunks, and half the peak memory).
CHUNK_ROWS = 1 << 20


@dataclass(frozen=True)
class Loss:
    """train.loss as the lesson computes it (the mean over the rows), and summed, for chunks."""

    mean: nn.Module
    summed: nn.Module

    @classmethod
    def named(cls, name: str) -> Loss:
        return cls(LOSSES[name](), LOSSES[name](reduction="sum"))

    def of(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss of model(x) against y, with no gradient."""
        if len(x) <= CHUNK_ROWS:
            loss: torch.Tensor = self.mean(model(x), y)
            return loss.detach()
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        for rows in _chunks(len(x)):
            total += self.summed(model(x[rows]), y[rows]).detach()
        return total / len(x)

    def accumulate(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: float = 1.0
    ) -> torch.Tensor:
        """The mean loss times `weight`, chunk by chunk, its gradient accumulated into the
        parameters (under DDP, averaged over the ranks once, with the last chunk)."""
        divisor = len(x) / weight  # the row count itself, exactly, at weight 1
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        chunks = list(_chunks(len(x)))
        for rows in chunks:
            last = rows is chunks[-1]
            with nullcontext() if last or not isinstance(model, DDP) else model.no_sync():
                loss = self.summed(model(x[rows]), y[rows]) / divisor
                loss.backward()
            total += loss.detach()
        return total


def _chunks(rows: int) -> Iterator[slice]:
    return (slice(start, start + CHUNK_ROWS) for start in range(0, rows, CHUNK_ROWS))


@dataclass(frozen=True)
class FitResult:
    model: Model  # on the cpu; Standardized when train.standardize is on
    history: TrainLog  # the losses the optimizer saw (standardised units, when standardised)


@dataclass
class TrainingState:
    """Everything the loop carries from one epoch to the next: what a resume point holds."""

    epoch: int  # epochs finished
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    # each rank's batch-order generator state, by rank; none full batch, whose state is the
    # same whatever the number of ranks
    batch_orders: list[torch.Tensor]
    train_loss: list[float]  # values of train.dtype, one per finished epoch
    test_loss: list[float]


@dataclass
class Losses:
    """The train and test loss of each epoch so far: arrays of train.dtype ("f": float32, "d":
    float64) that grow with the epochs run, nothing allocated up front."""

    train: array[float] = field(default_factory=lambda: array("f"))
    test: array[float] = field(default_factory=lambda: array("f"))

    @classmethod
    def of(cls, dtype: str) -> Losses:
        """Empty arrays of train.dtype."""
        code = "d" if dtype == "float64" else "f"
        return cls(array(code), array(code))

    def append(self, train_loss: torch.Tensor, test_loss: torch.Tensor) -> None:
        # one copy to the host (a GPU waits once, not twice); a float32 or float64 is exact in
        # a float, and exact again in an array of its type
        train, test = torch.stack([train_loss, test_loss]).tolist()
        self.train.append(train)
        self.test.append(test)

    def log(self) -> TrainLog:
        dtype = np.float64 if self.train.typecode == "d" else np.float32
        return TrainLog.of(self.train, self.test, dtype)


class Run(Protocol):
    """The machinery around the loop, which fit calls where an epoch ends."""

    def resumed(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batch_order: torch.Generator
    ) -> TrainingState | None:
        """Where an earlier run of this same computation stopped, checked against this loop's
        model, optimizer and batch order; None: start afresh."""

    def epochs(self, start: int, stop: int) -> Iterable[int]:
        """The epochs to run (a progress bar may show them)."""

    def end_of_epoch(self, epoch: int, losses: Losses, state: Callable[[], TrainingState]) -> None:
        """After epoch `epoch`: `state()` makes the loop's state (a collective in a process
        group: every rank calls it, or none). May raise to stop the run."""


class PlainRun:
    """The lesson's loop alone: no resume point, no progress, nothing at an epoch's end."""

    def resumed(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batch_order: torch.Generator
    ) -> TrainingState | None:
        return None

    def epochs(self, start: int, stop: int) -> Iterable[int]:
        return range(start, stop)

    def end_of_epoch(self, epoch: int, losses: Losses, state: Callable[[], TrainingState]) -> None:
        return None


def make_optimizer(params: TrainParams, model: nn.Module) -> torch.optim.Optimizer:
    if params.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=params.lr)
    return torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum)


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


def fit(params: TrainParams, train: Dataset, test: Dataset, run: Run | None = None) -> FitResult:
    """Train a fresh model on `train` in train.dtype, recording train and test loss every epoch;
    `run` (the machinery around the loop: linreg.runtime.training_run) may resume an earlier run
    and is called at each epoch's end. In a process group `train` and `test` are this rank's
    parts of the sets, and the losses recorded are all the rows' (docs/scaling-out.md)."""
    run = run or PlainRun()
    where = placement(params.device)
    train, test = (data.astype(np.dtype(params.dtype)) for data in (train, test))
    # every rank scales by the whole train set's statistics, from the parts (each row once)
    scaling = standard_scaling(train, where.total) if params.standardize else None
    train = where.balanced(train, padded=params.batch_size > 0)
    test_share = where.part_share(len(test))
    torch.manual_seed(params.seed)  # the lesson seeds right before building the model
    model = build_model(params.model, train.x.shape[1], params.dtype).to(where.device)
    trained = where.wrap(model)  # the test loss uses the plain module
    loss, optimizer = Loss.named(params.loss), make_optimizer(params, model)
    # each rank shuffles its own shard in its own order, drawn where the data is: a permutation
    # drawn on the cpu and copied to a GPU every epoch would cost more than the epoch itself
    batch_order = torch.Generator(where.device).manual_seed(params.seed + where.rank)
    standardized = Standardized(model, scaling).to(where.device) if scaling else None
    x_train, y_train = as_tensors(train, where.device, standardized)
    x_test, y_test = as_tensors(test, where.device, standardized)
    weight = where.weight(len(train))  # full-batch shards may differ by a row
    run_epoch = epoch_updates(
        params, trained, loss, optimizer, x_train, y_train, batch_order, weight
    )
    losses = Losses.of(params.dtype)
    if resumed := run.resumed(model, optimizer, batch_order):
        _restore(resumed, model, optimizer, batch_order, where.rank, losses)

    def state(epoch: int) -> TrainingState:
        orders = where.gather(batch_order.get_state()) if params.batch_size else []
        saved = model.state_dict(), optimizer.state_dict(), orders
        return TrainingState(epoch + 1, *saved, losses.train.tolist(), losses.test.tolist())

    for epoch in run.epochs(len(losses.train), params.epochs):
        trained.train()
        # every rank sees the same mean loss, so that all stop together if it diverges
        train_loss = where.mean(run_epoch())
        model.eval()
        with torch.inference_mode():
            test_loss = loss.of(model, x_test, y_test)
        losses.append(train_loss, where.pooled(test_loss, test_share))
        _stop_if_diverged(params, epoch, losses.train[-1], losses.test[-1])
        run.end_of_epoch(epoch, losses, partial(state, epoch))
    fitted: Model = Standardized(model.cpu(), scaling) if scaling else model.cpu()
    return FitResult(model=fitted, history=losses.log())


def epoch_updates(
    params: TrainParams,
    model: nn.Module,
    loss: Loss,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_order: torch.Generator,
    weight: float = 1.0,
) -> Callable[[], torch.Tensor]:
    """One epoch's updates, full batch or in mini-batches drawn by `batch_order`; it returns the
    epoch's mean train loss (full batch: times this rank's `weight`, Placement.weight)."""
    if not params.batch_size:
        return partial(_step, model, loss, optimizer, x, y, weight)
    xy = torch.cat([x, y], dim=1)  # (n, k + 1): mini-batches shuffle x and y in one gather
    return partial(_minibatch_epoch, model, loss, optimizer, xy, params.batch_size, batch_order)


def _restore(
    state: TrainingState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_order: torch.Generator,
    rank: int,
    losses: Losses,
) -> None:
    """Put the model, the optimizer, this rank's batch order and the losses where `state` (a
    resume point's, checked: linreg.io.resume_point) left them."""
    model.load_state_dict(state.model)
    optimizer.load_state_dict(state.optimizer)
    if state.batch_orders:  # mini-batches
        batch_order.set_state(state.batch_orders[rank])
    losses.train.extend(state.train_loss)
    losses.test.extend(state.test_loss)


def _stop_if_diverged(params: TrainParams, epoch: int, train_loss: float, test_loss: float) -> None:
    """A NaN or inf loss never comes back: stop there, before any checkpoint is written."""
    if math.isfinite(train_loss) and math.isfinite(test_loss):
        return
    raise PipelineError(
        f"train.lr = {params.lr!r}: training diverged at epoch {epoch} (train loss {train_loss}, "
        f"test loss {test_loss}); no checkpoint written; try a lower train.lr, "
        f"e.g. {params.lr / 10:g}"
    )


def _step(
    model: nn.Module,
    loss: Loss,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    weight: float = 1.0,
) -> torch.Tensor:
    """One update on (x, y), of the mean loss times `weight`; returns that loss, computed
    before the update."""
    if len(x) <= CHUNK_ROWS:  # the lesson's step, op for op
        value: torch.Tensor = loss.mean(model(x), y)
        if weight != 1.0:
            value = value * weight
        optimizer.zero_grad()
        value.backward()
    else:
        optimizer.zero_grad()
        value = loss.accumulate(model, x, y, weight)
    optimizer.step()
    return value.detach()


def _minibatch_epoch(
    model: nn.Module,
    loss: Loss,
    optimizer: torch.optim.Optimizer,
    xy: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """One seeded pass over xy (n, k + 1: the features, then y) in mini-batches; returns the
    row-weighted mean of the batch losses."""
    # One gather per epoch, then contiguous slices: far faster than gathering every batch.
    # On the cpu, int32 indices: the same permutation as int64 from the same generator, at
    # half the cost. Each device draws its own permutation: cpu and cuda see other batches.
    dtype = torch.int32 if xy.device.type == "cpu" else torch.int64
    order = torch.randperm(len(xy), generator=generator, dtype=dtype, device=xy.device)
    shuffled = xy.index_select(0, order)
    losses = []
    for start in range(0, len(xy), batch_size):
        batch = shuffled[start : start + batch_size]
        losses.append(_step(model, loss, optimizer, batch[:, :-1], batch[:, -1:]))
    # weighted by rows once per epoch, not with two more small kernels per batch: every batch
    # has batch_size rows but the last
    rows = torch.full((len(losses),), float(batch_size), dtype=xy.dtype, device=xy.device)
    rows[-1] = len(xy) - batch_size * (len(losses) - 1)
    mean: torch.Tensor = torch.dot(torch.stack(losses), rows) / len(xy)
    return mean
