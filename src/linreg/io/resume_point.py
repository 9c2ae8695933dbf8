"""A training run's resume point: the loop's state (core.training.TrainingState) saved at the
end of an epoch, checksummed, and read back only whole, of this run, and fit for this loop:
every field is checked against the run's model and optimizer before any is used.
Loaded without running pickled code."""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from linreg.core.errors import PipelineError, shorten
from linreg.core.model import tensor_problem
from linreg.core.params import TrainParams
from linreg.core.training import TrainingState
from linreg.io.checkpoint import saved_bytes
from linreg.io.files import read_bytes, write_bytes_atomic

# The largest resume point read: a loss history of a million epochs is some 20 MB.
RESUME_POINT_BYTES = 256 << 20

# A resume point's file: this line, the sha256 of the rest in hex and a newline, then the bytes
# torch.save wrote. A torn, flipped or edited file is known before torch reads a byte of it.
_RESUME_POINT = b"linreg resume point 1\n"


class UnusableResumePoint(PipelineError):
    """A resume point that cannot be used: not one, torn, edited, or of another run."""


def save_resume_point(path: Path, fingerprint: str, state: dict[str, Any]) -> None:
    """The state of the run `fingerprint` (tensors and plain containers), atomically: a kill
    mid-write leaves the previous resume point as it was."""
    body = saved_bytes({"fingerprint": fingerprint, "state": state})
    digest = hashlib.sha256(body).hexdigest().encode()
    write_bytes_atomic(path, _RESUME_POINT + digest + b"\n" + body)


def read_resume_point(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The state saved at `path` for the run `fingerprint`; None when there is no resume point;
    UnusableResumePoint, saying why, when the file is not one of this run, whole."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        data = read_bytes(path, "a resume point", RESUME_POINT_BYTES)
    except PipelineError as error:
        raise UnusableResumePoint(str(error).removeprefix(f"{path}: ")) from None
    head, _, body = data.partition(b"\n")
    digest, _, body = body.partition(b"\n")
    if head + b"\n" != _RESUME_POINT or hashlib.sha256(body).hexdigest().encode() != digest:
        raise UnusableResumePoint("its bytes do not match its checksum (torn or edited)")
    try:
        saved = torch.load(io.BytesIO(body), weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as error:
        raise UnusableResumePoint(f"unreadable ({shorten(str(error))})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        raise UnusableResumePoint("not a resume point (no state)")
    if saved.get("fingerprint") != fingerprint:
        raise UnusableResumePoint("a resume point of another run (params, data or code)")
    state: dict[str, Any] = saved["state"]
    return state


def state_of(saved: dict[str, Any]) -> TrainingState:
    """The loop's state a resume point saved (its __dict__); ValueError when its fields differ."""
    names = [field.name for field in fields(TrainingState)]
    if not all(isinstance(name, str) for name in saved) or sorted(saved) != sorted(names):
        raise ValueError(f"its fields are {', '.join(map(str, saved))}, not {', '.join(names)}")
    return TrainingState(**saved)


def check_resumable(
    params: TrainParams, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainingState
) -> None:
    """A ValueError saying what keeps `state` from continuing this loop, every field checked
    against the run before any is used: an epoch within train.epochs, one finite loss per epoch
    done, the model's tensors, and this optimizer's groups and state. Nothing in it depends on
    the number of ranks: any number may continue it."""
    if type(state.epoch) is not int or not 1 <= state.epoch <= params.epochs:  # True is no epoch
        raise ValueError(f"epoch {state.epoch!r} is not within 1..{params.epochs}")
    for name, history in (("train_loss", state.train_loss), ("test_loss", state.test_loss)):
        if not isinstance(history, list) or len(history) != state.epoch:
            raise ValueError(f"its {name} does not hold one loss for each of {state.epoch} epochs")
        if not all(isinstance(loss, float) and math.isfinite(loss) for loss in history):
            raise ValueError(f"its {name} holds other values than finite numbers")
    _check_tensors("model's", state.model, model.state_dict())
    _check_optimizer(state.optimizer, optimizer, list(model.parameters()))


def _check_tensors(whose: str, saved: object, own: dict[str, torch.Tensor]) -> None:
    if not isinstance(saved, dict) or sorted(saved) != sorted(own):
        raise ValueError(f"its {whose} tensors are not {', '.join(own) or 'none'}")
    for name, like in own.items():
        problem = tensor_problem(saved[name], like)
        if problem:
            raise ValueError(f"its {whose} {name} {problem}")


def _check_optimizer(
    saved: object, optimizer: torch.optim.Optimizer, parameters: list[torch.Tensor]
) -> None:
    """This optimizer's param_groups exactly (the fingerprint covers its settings), and for each
    parameter the state this optimizer keeps: tensors of the parameter's shape (SGD's momentum
    buffer, Adam's averages; None before a first step) and Adam's scalar step."""
    own = optimizer.state_dict()
    if not isinstance(saved, dict) or set(saved) != set(own):
        raise ValueError("its optimizer state is not an optimizer's")
    if not _plain(saved["param_groups"]) or saved["param_groups"] != own["param_groups"]:
        raise ValueError("its optimizer's parameter groups or settings are not this run's")
    entries = saved["state"]
    if not isinstance(entries, dict) or not set(entries) <= set(range(len(parameters))):
        raise ValueError("its optimizer state is of other parameters than this model's")
    for index, entry in entries.items():
        if not isinstance(entry, dict):
            raise ValueError(f"its optimizer state of parameter {index} is not a mapping")
        if isinstance(optimizer, torch.optim.LBFGS):
            _check_lbfgs(entry, parameters, optimizer.defaults["history_size"])
            continue
        for name, value in entry.items():
            like = torch.zeros(()) if name == "step" else parameters[index].detach()
            problem = None if value is None else tensor_problem(value, like)
            if problem:
                raise ValueError(f"its optimizer's {name} of parameter {index} {problem}")


def _check_lbfgs(entry: dict[str, Any], parameters: list[torch.Tensor], history: int) -> None:
    """L-BFGS keeps its state under the first parameter, over all of them flattened: the last
    direction and gradient, up to `history` pairs of steps and gradient changes, and numbers."""
    dtype = parameters[0].dtype
    flat = torch.zeros(sum(p.numel() for p in parameters), dtype=dtype)
    scalar = torch.zeros((), dtype=dtype)
    dirs = entry.get("old_dirs")
    pairs = len(dirs) if isinstance(dirs, list) and len(dirs) <= history else -1
    expected: dict[str, Callable[[object], str | None]] = {
        "func_evals": _count,
        "n_iter": _count,
        "prev_loss": _number,
        "t": lambda value: _number_or_tensor(value, scalar),
        "H_diag": lambda value: _number_or_tensor(value, scalar),
        "d": lambda value: tensor_problem(value, flat),
        "prev_flat_grad": lambda value: tensor_problem(value, flat),
        "old_dirs": lambda value: _listed(value, pairs, lambda item: tensor_problem(item, flat)),
        "old_stps": lambda value: _listed(value, pairs, lambda item: tensor_problem(item, flat)),
        "ro": lambda value: _listed(value, pairs, lambda item: tensor_problem(item, scalar)),
        "al": lambda value: _listed(
            value, history, lambda item: None if item is None else tensor_problem(item, scalar)
        ),
    }
    for name, value in entry.items():
        check = expected.get(name)
        problem = check(value) if check else "is not L-BFGS's"
        if problem:
            raise ValueError(f"its optimizer's {name} {problem}")


def _count(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else "is not a count"


def _number(value: object) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return None if ok else "is not a finite number"


def _number_or_tensor(value: object, like: torch.Tensor) -> str | None:
    """A finite number, or a tensor like `like`: L-BFGS keeps some values as either."""
    return None if _number(value) is None else tensor_problem(value, like)


def _listed(value: object, length: int, problem: Callable[[object], str | None]) -> str | None:
    """Why `value` is not a list of `length` items that pass `problem`, or None."""
    if not isinstance(value, list) or len(value) != length:
        return f"is not a list of {length}"
    return next((f"item {i} {p}" for i, item in enumerate(value) if (p := problem(item))), None)


def _plain(value: object) -> bool:
    """Whether `value` is made of plain values alone (numbers, text, None, and lists and dicts
    of them), as an optimizer's settings are: a tensor among them would make == ambiguous."""
    if isinstance(value, dict):
        return all(_plain(key) and _plain(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return all(map(_plain, value))
    return value is None or isinstance(value, int | float | str)
