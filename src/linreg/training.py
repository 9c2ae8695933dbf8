"""The lesson's training loop: forward, loss, zero_grad, backward, step; then the test loss."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from linreg.dataset import Dataset
from linreg.distributed import Ranks, shard_rows
from linreg.errors import PipelineError
from linreg.model import LineModel, build_model
from linreg.params import TrainParams

LOSSES: dict[str, type[nn.Module]] = {"l1": nn.L1Loss, "mse": nn.MSELoss, "huber": nn.HuberLoss}


@dataclass(frozen=True)
class History:
    epoch: np.ndarray  # (epochs,) int64
    train_loss: np.ndarray  # (epochs,) float32, computed before that epoch's update
    test_loss: np.ndarray  # (epochs,) float32, computed after it


@dataclass(frozen=True)
class FitResult:
    model: LineModel  # on the cpu
    history: History


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


def make_optimizer(params: TrainParams, model: nn.Module) -> torch.optim.Optimizer:
    if params.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=params.lr)
    return torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum)


def as_column(values: np.ndarray, device: torch.device) -> torch.Tensor:
    """(n,) numpy float32 -> (n, 1) tensor on `device`, without a copy on the cpu."""
    return torch.from_numpy(values).unsqueeze(1).to(device)


def fit(
    params: TrainParams,
    train: Dataset,
    test: Dataset,
    verbose: bool = False,
    progress: bool = False,
    ranks: Ranks | None = None,
) -> FitResult:
    """Train a fresh model on `train`, recording train and test loss every epoch.

    verbose prints a line every log_every epochs; progress shows a tqdm bar. With `ranks`
    (a joined process group), this process trains on its shard of `train` under
    DistributedDataParallel, which averages the gradients; the recorded train loss is the
    mean over the ranks, and only the writing rank prints.
    """
    device = resolve_device(params.device)
    if ranks is not None:
        train = _shard(train, ranks)
        if device.type == "cuda":
            device = torch.device("cuda", ranks.local_rank)
    torch.manual_seed(params.seed)  # the lesson seeds right before building the model
    model = build_model(params.model).to(device)
    # DDP averages the gradients over the ranks; the test loss uses the plain module
    trained = model if ranks is None else DistributedDataParallel(model)
    loss_fn = LOSSES[params.loss]()
    optimizer = make_optimizer(params, model)
    # each rank shuffles its own shard in its own order, drawn where the data is: a permutation
    # drawn on the cpu and copied to a GPU every epoch would cost more than the epoch itself
    batch_order = torch.Generator(device).manual_seed(params.seed + (ranks.rank if ranks else 0))
    shows = ranks is None or ranks.writes

    x_train, y_train = as_column(train.x, device), as_column(train.y, device)
    x_test, y_test = as_column(test.x, device), as_column(test.y, device)
    # (n, 2): mini-batches shuffle x and y together in one gather
    xy_train = torch.cat([x_train, y_train], dim=1) if params.batch_size else None
    # float32 arrays that grow with the epochs actually run: nothing is allocated up front
    train_losses, test_losses = array("f"), array("f")

    epochs = tqdm(
        range(params.epochs), desc="train", unit="epoch", disable=not progress or not shows
    )
    for epoch in epochs:
        trained.train()
        if params.batch_size == 0:
            train_loss = _step(trained, loss_fn, optimizer, x_train, y_train)
        else:
            train_loss = _minibatch_epoch(
                trained, loss_fn, optimizer, xy_train, params.batch_size, batch_order
            )
        if ranks is not None:
            # every rank sees the same mean loss, so that all stop together if it diverges
            train_loss = train_loss.reshape(1)
            dist.all_reduce(train_loss)
            train_loss = train_loss[0] / ranks.world_size
        model.eval()
        with torch.inference_mode():
            test_loss = loss_fn(model(x_test), y_test)
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

    history = History(
        epoch=np.arange(len(train_losses), dtype=np.int64),
        train_loss=np.frombuffer(train_losses, dtype=np.float32).copy(),
        test_loss=np.frombuffer(test_losses, dtype=np.float32).copy(),
    )
    return FitResult(model=model.cpu(), history=history)


def _shard(train: Dataset, ranks: Ranks) -> Dataset:
    rows = shard_rows(len(train), ranks)
    return Dataset(train.x[rows], train.y[rows])


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
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """One update on (x, y); returns the loss computed before it."""
    loss = loss_fn(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def _minibatch_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    xy: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """One seeded pass over xy (n, 2: x then y) in mini-batches; returns the row-weighted mean
    of the batch losses."""
    # One gather per epoch, then contiguous slices: far faster than gathering every batch.
    # On the cpu, int32 indices: the same permutation as int64 from the same generator, at
    # half the cost. Each device draws its own permutation: cpu and cuda see other batches.
    dtype = torch.int32 if xy.device.type == "cpu" else torch.int64
    order = torch.randperm(len(xy), generator=generator, dtype=dtype, device=xy.device)
    shuffled = xy.index_select(0, order)
    losses = []
    for start in range(0, len(xy), batch_size):
        batch = shuffled[start : start + batch_size]
        losses.append(_step(model, loss_fn, optimizer, batch[:, :1], batch[:, 1:]))
    # weighted by rows once per epoch, not with two more small kernels per batch: every batch
    # has batch_size rows but the last
    rows = torch.full((len(losses),), float(batch_size), device=xy.device)
    rows[-1] = len(xy) - batch_size * (len(losses) - 1)
    return torch.dot(torch.stack(losses), rows) / len(xy)
