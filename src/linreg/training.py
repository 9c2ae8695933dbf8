"""The lesson's training loop: forward, loss, zero_grad, backward, step; then the test loss."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from linreg.artifacts import TrainLog
from linreg.dataset import Dataset
from linreg.distributed import placement
from linreg.errors import PipelineError
from linreg.model import Model, Scaling, Standardized, build_model
from linreg.params import TrainParams
from linreg.resume import Checkpoints, TrainingState, held_stops

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
        total = torch.zeros((), device=x.device)
        for rows in _chunks(len(x)):
            total += self.summed(model(x[rows]), y[rows]).detach()
        return total / len(x)

    def accumulate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss chunk by chunk, its gradient accumulated into the parameters (under
        DDP, averaged over the ranks once, with the last chunk)."""
        total = torch.zeros((), device=x.device)
        chunks = list(_chunks(len(x)))
        for rows in chunks:
            last = rows is chunks[-1]
            with nullcontext() if last or not isinstance(model, DDP) else model.no_sync():
                loss = self.summed(model(x[rows]), y[rows]) / len(x)
                loss.backward()
            total += loss.detach()
        return total


def _chunks(rows: int) -> Iterator[slice]:
    return (slice(start, start + CHUNK_ROWS) for start in range(0, rows, CHUNK_ROWS))


@dataclass(frozen=True)
class FitResult:
    model: Model  # on the cpu; Standardized when train.standardize is on
    history: TrainLog  # the losses the optimizer saw (standardised units, when standardised)


def make_optimizer(params: TrainParams, model: nn.Module) -> torch.optim.Optimizer:
    if params.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=params.lr)
    return torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum)


def as_column(values: np.ndarray, device: torch.device) -> torch.Tensor:
    """(n,) numpy float32 -> (n, 1) tensor on `device`, without a copy on the cpu."""
    return torch.from_numpy(values).unsqueeze(1).to(device)


def standard_scaling(train: Dataset, total: Callable[[np.ndarray], np.ndarray]) -> Scaling:
    """The train set's feature and target means and standard deviations (computed in float64,
    kept as float32); a constant column cannot be standardised and is an error. In a process
    group `train` is this rank's part, and `total` sums over the ranks (Placement.total)."""
    x, y = train.x.astype(np.float64), train.y.astype(np.float64)
    rows = total(np.array(len(train), np.float64))
    # numpy's mean and std, op for op, of the rows of every part
    x_mean, y_mean = total(x.sum(axis=0)) / rows, total(y.sum()) / rows
    x_std = np.sqrt(total(((x - x_mean) ** 2).sum(axis=0)) / rows)
    y_std = float(np.sqrt(total(((y - y_mean) ** 2).sum()) / rows))
    for name, std in [*zip(train.features, x_std, strict=True), (train.target, y_std)]:
        if not np.float32(std) > 0:
            raise PipelineError(
                f"train.standardize = true: column {name!r} is constant in the train set "
                "(standard deviation 0): standardising it would divide by zero; drop the "
                "column or set train.standardize: false"
            )
    return Scaling(
        x_mean=x_mean.astype(np.float32),
        x_std=x_std.astype(np.float32),
        y_mean=float(np.float32(y_mean)),
        y_std=float(np.float32(y_std)),
    )


def fit(
    params: TrainParams,
    train: Dataset,
    test: Dataset,
    *,
    verbose: bool = False,
    checkpoints: Checkpoints | None = None,
) -> FitResult:
    """Train a fresh model on `train`, recording train and test loss every epoch.

    verbose prints a line every log_every epochs; a tqdm bar shows where stderr is a terminal.
    In a process group (distributed.run_ranks), `train` and `test` are this rank's parts of the
    sets (each row in one rank's part: Placement.part, dataset.read_split); the ranks make equal
    shards of the train parts and train on them under DistributedDataParallel, the recorded
    losses are those of all the rows, and only the writing rank prints. With `checkpoints`, it
    continues from this run's resume point when there is one, saves new ones as they fall due,
    keeps the live log, and a single process stopped by SIGINT or SIGTERM saves one at the end
    of that epoch before it stops.
    """
    where = placement(params.device)
    # every rank scales by the whole train set's statistics, from the parts (each row once)
    scaling = standard_scaling(train, where.total) if params.standardize else None
    train = where.balanced(train)
    test_share = where.part_share(len(test))
    torch.manual_seed(params.seed)  # the lesson seeds right before building the model
    model = build_model(params.model, features=train.x.shape[1]).to(where.device)
    trained = where.wrap(model)  # the test loss uses the plain module
    loss = Loss.named(params.loss)
    optimizer = make_optimizer(params, model)
    # each rank shuffles its own shard in its own order, drawn where the data is: a permutation
    # drawn on the cpu and copied to a GPU every epoch would cost more than the epoch itself
    batch_order = torch.Generator(where.device).manual_seed(params.seed + where.rank)

    x_train, y_train = torch.from_numpy(train.x).to(where.device), as_column(train.y, where.device)
    x_test, y_test = torch.from_numpy(test.x).to(where.device), as_column(test.y, where.device)
    if scaling:
        standardized = Standardized(model, scaling).to(where.device)
        x_train, x_test = standardized.scale_x(x_train), standardized.scale_x(x_test)
        y_train, y_test = standardized.scale_y(y_train), standardized.scale_y(y_test)
    if params.batch_size:
        # (n, k + 1): mini-batches shuffle x and y together in one gather
        xy_train = torch.cat([x_train, y_train], dim=1)
        run_epoch = partial(
            _minibatch_epoch, trained, loss, optimizer, xy_train, params.batch_size, batch_order
        )
    else:
        run_epoch = partial(_step, trained, loss, optimizer, x_train, y_train)
    # float32 arrays that grow with the epochs actually run: nothing is allocated up front
    train_losses, test_losses = array("f"), array("f")
    shows = where.writes

    resumed = checkpoints.load(removes_stale=shows) if checkpoints else None
    if resumed:
        _restore(resumed, model, optimizer, batch_order, where.rank)
        train_losses.extend(resumed.train_loss)
        test_losses.extend(resumed.test_loss)
        if verbose and shows:
            tqdm.write(f"resumed from epoch {resumed.epoch} of {params.epochs}")
    start = len(train_losses)
    epochs = tqdm(
        range(start, params.epochs),
        initial=start,
        total=params.epochs,
        desc="train",
        unit="epoch",
        disable=None if shows else True,  # None: tqdm's own test, is stderr a terminal
    )
    holds = checkpoints is not None and checkpoints.saving and where.ranks is None
    with held_stops(hold=holds) as stop:
        for epoch in epochs:
            trained.train()
            # every rank sees the same mean loss, so that all stop together if it diverges
            train_loss = where.mean(run_epoch())
            model.eval()
            with torch.inference_mode():
                test_loss = loss.of(model, x_test, y_test)
            test_loss = where.pooled(test_loss, test_share)
            # one copy to the host (a GPU waits once, not twice); a float32 is exact in a float,
            # and exact again in array("f")
            losses = torch.stack([train_loss, test_loss]).tolist()
            train_losses.append(losses[0])
            test_losses.append(losses[1])
            _stop_if_diverged(params, epoch, train_losses[-1], test_losses[-1])
            if verbose and shows and epoch % params.log_every == 0:
                # tqdm.write prints above the bar when there is one, plainly when there is not
                tqdm.write(
                    f"epoch {epoch:>5} | train_loss {train_losses[-1]:.8f}"
                    f" | test_loss {test_losses[-1]:.8f}"
                )
            if checkpoints is None:
                continue
            if checkpoints.due(stop.signum is not None, where):
                state = TrainingState(
                    epoch=epoch + 1,
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    batch_orders=where.gather(batch_order.get_state()),
                    train_loss=train_losses.tolist(),
                    test_loss=test_losses.tolist(),
                )
                checkpoints.save(state, writes=shows)
            if shows:
                checkpoints.log_so_far(train_losses, test_losses)
            if stop.signum is not None:
                raise stop.now()

    fitted: Model = Standardized(model.cpu(), scaling) if scaling else model.cpu()
    return FitResult(model=fitted, history=TrainLog.of(train_losses, test_losses))


def _restore(
    state: TrainingState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_order: torch.Generator,
    rank: int,
) -> None:
    """Put the model, the optimizer and this rank's batch order where `state` left them."""
    model.load_state_dict(state.model)
    optimizer.load_state_dict(state.optimizer)
    batch_order.set_state(state.batch_orders[rank])


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
) -> torch.Tensor:
    """One update on (x, y); returns the loss computed before it."""
    if len(x) <= CHUNK_ROWS:  # the lesson's step, op for op
        value: torch.Tensor = loss.mean(model(x), y)
        optimizer.zero_grad()
        value.backward()
    else:
        optimizer.zero_grad()
        value = loss.accumulate(model, x, y)
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
    rows = torch.full((len(losses),), float(batch_size), device=xy.device)
    rows[-1] = len(xy) - batch_size * (len(losses) - 1)
    mean: torch.Tensor = torch.dot(torch.stack(losses), rows) / len(xy)
    return mean
