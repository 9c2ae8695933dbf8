"""The lesson's training loop: forward, loss, zero_grad, backward, step; then the test loss.
Where the data trains (the device, a rank's shard, DistributedDataParallel) is Placed's; the
machinery around the loop (resume points, signals, the live log) hooks in at the end of an
epoch through a Run (linreg.runtime.training_run). The loop itself knows nothing of files."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from linreg.core.batches import Batches, pieces
from linreg.core.dataset import Dataset
from linreg.core.errors import PipelineError
from linreg.core.fused import LinePass
from linreg.core.model import build_model
from linreg.core.params import TrainParams
from linreg.core.placement import place
from linreg.core.records import TrainLog

LOSSES: dict[str, type[nn.Module]] = {"l1": nn.L1Loss, "mse": nn.MSELoss, "huber": nn.HuberLoss}


@dataclass(frozen=True)
class FitResult:
    model: nn.Module  # on the cpu; Standardized when train.standardize is on
    history: TrainLog  # the losses the optimizer saw (standardised units, when standardised)


@dataclass
class TrainingState:
    """Everything the loop carries from one epoch to the next: what a resume point holds."""

    epoch: int  # epochs finished
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
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

    def resumed(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> TrainingState | None:
        """Where an earlier run of this same computation stopped, checked against this loop's
        model and optimizer; None: start afresh. (An epoch's mini-batches are re-derived from
        train.seed, the epoch and the rank: core/batches.py.)"""

    def epochs(self, start: int, stop: int) -> Iterable[int]:
        """The epochs to run (a progress bar may show them)."""

    def end_of_epoch(self, epoch: int, losses: Losses, state: Callable[[], TrainingState]) -> None:
        """After epoch `epoch`: `state()` makes the loop's state. May raise to stop the run."""


class PlainRun:
    """The lesson's loop alone: no resume point, no progress, nothing at an epoch's end."""

    def resumed(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> TrainingState | None:
        return None

    def epochs(self, start: int, stop: int) -> Iterable[int]:
        return range(start, stop)

    def end_of_epoch(self, epoch: int, losses: Losses, state: Callable[[], TrainingState]) -> None:
        return None


def make_optimizer(params: TrainParams, model: nn.Module) -> torch.optim.Optimizer:
    if params.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=params.lr)
    if params.optimizer == "lbfgs":
        return StepLBFGS(model.parameters(), lr=params.lr)
    return torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum)


class StepLBFGS(torch.optim.LBFGS):
    """L-BFGS stepped as the loop steps every optimizer: one iteration per step(), from the
    gradients the loop's backward left (full batch: params refuse mini-batches), with no line
    search, so no closure runs the model again. The curvature history carries from step to
    step, so an epoch is one L-BFGS iteration. No tolerance stops it early: train.epochs does,
    and train_loss_gap says how near the optimum it came."""

    def __init__(self, parameters: Iterable[nn.Parameter], lr: float) -> None:
        super().__init__(parameters, lr=lr, max_iter=1, tolerance_grad=0, tolerance_change=0)

    def step(self, closure: Callable[[], float] | None = None) -> float:  # type: ignore[override]
        # With one iteration and no line search, L-BFGS decides on the gradients alone: the
        # loss the closure returns is only kept, as prev_loss.
        return float(super().step(lambda: 0.0))  # type: ignore[no-untyped-call]


def fit(params: TrainParams, train: Dataset, test: Dataset, run: Run | None = None) -> FitResult:
    """Train a fresh model on `train` in train.dtype, recording the train and test loss of every
    epoch. `run` (the machinery around the loop) may resume an earlier run and is called at each
    epoch's end. In a process group `train` and `test` are this rank's parts of the sets, and
    the losses recorded are all the rows' (docs/scaling-out.md)."""
    run = run or PlainRun()
    torch.manual_seed(params.seed)  # the lesson seeds right before building the model
    model = build_model(params.model, train.x.shape[1], params.dtype)
    data = place(params, model, train, test)  # tensors on the device, standardised if asked
    trained = data.trained  # the model; in a process group, DistributedDataParallel's wrapper
    loss_fn, optimizer = LOSSES[params.loss](), make_optimizer(params, model)
    batches, losses = Batches(params, data), Losses.of(params.dtype)
    line = LinePass.of(model, params.loss, data.where.mean)  # None: not a line
    if resumed := run.resumed(model, optimizer):
        _restore(resumed, model, optimizer, losses)

    for epoch in run.epochs(len(losses.train), params.epochs):
        trained.train()
        for update in batches.epoch(epoch):  # the whole set, unless train.batch_size
            optimizer.zero_grad()
            if line and line.takes(len(update)):  # a large update: one pass (core/fused.py)
                batches.add(line.loss_and_gradient(update.x, update.y, update.weight))
            else:
                for x, y, share in update.pieces():  # one, unless over batches.CHUNK_ROWS rows
                    loss = loss_fn(trained(x), y) * share  # (n, 1) against (n, 1)
                    loss.backward()
                    batches.add(loss)
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            if line and line.takes(len(data.test[0])):
                test_loss = line.mean_loss(*data.test)
            else:
                each = [loss_fn(model(x), y) * share for x, y, share in pieces(*data.test)]
                test_loss = torch.stack(each).sum()
        losses.append(*data.over_ranks(batches.mean_loss(), test_loss))
        _stop_if_diverged(params, epoch, losses.train[-1], losses.test[-1])
        state = partial(_loop_state, epoch, model, optimizer, losses)
        run.end_of_epoch(epoch, losses, state)
    return FitResult(model=data.fitted(model), history=losses.log())


def _restore(
    state: TrainingState, model: nn.Module, optimizer: torch.optim.Optimizer, losses: Losses
) -> None:
    """Put the model, the optimizer and the losses where `state` (a resume point's, checked:
    linreg.io.resume_point) left them."""
    model.load_state_dict(state.model)
    optimizer.load_state_dict(state.optimizer)
    losses.train.extend(state.train_loss)
    losses.test.extend(state.test_loss)


def _loop_state(
    epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, losses: Losses
) -> TrainingState:
    """The loop's state after `epoch`, for a resume point."""
    saved = model.state_dict(), optimizer.state_dict()
    return TrainingState(epoch + 1, *saved, losses.train.tolist(), losses.test.tolist())


def _stop_if_diverged(params: TrainParams, epoch: int, train_loss: float, test_loss: float) -> None:
    """A NaN or inf loss never comes back: stop there, before any checkpoint is written."""
    if math.isfinite(train_loss) and math.isfinite(test_loss):
        return
    raise PipelineError(
        f"train.lr = {params.lr!r}: training diverged at epoch {epoch} (train loss {train_loss}, "
        f"test loss {test_loss}); no checkpoint written; try a lower train.lr, "
        f"e.g. {params.lr / 10:g}"
    )
