"""The trained model's checkpoint and a training run's resume point: byte-stable, and loaded
without running pickled code."""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from linreg.core.conventions import MAX_FEATURES
from linreg.core.errors import PipelineError, shorten
from linreg.core.model import (
    MODELS,
    Model,
    Scaling,
    Standardized,
    input_features,
    tensor_problem,
)
from linreg.io.artifacts import write_train_log
from linreg.io.files import all_or_none, read_bytes, write_bytes_atomic

if TYPE_CHECKING:
    from linreg.core.training import FitResult

# What a standardised model's checkpoint adds: the train set's statistics (tensors).
_SCALING = ("x_mean", "x_std", "y_mean", "y_std")


def save_checkpoint(path: str | Path, model: Model) -> None:
    """Save the model's kind and cpu weights, and a standardised model's statistics."""
    line = model.model if isinstance(model, Standardized) else model
    state: dict[str, object] = {
        "model": line.kind,
        "state_dict": {name: value.detach().cpu() for name, value in line.state_dict().items()},
    }
    if isinstance(model, Standardized):
        state["standardize"] = {name: getattr(model, name).detach().cpu() for name in _SCALING}
    write_bytes_atomic(path, _saved_bytes(state))


def save_fit(model_path: str | Path, log_path: str | Path, result: FitResult) -> None:
    """The train stage's outputs, the checkpoint and the train log: both written or neither."""
    with all_or_none():
        save_checkpoint(model_path, result.model)
        write_train_log(log_path, result.history)


def _saved_bytes(state: dict[str, Any]) -> bytes:
    """torch.save's bytes, saved into a BytesIO: torch.save names the zip's inner folder after
    the file it writes, so saving to a temporary file and renaming it would change them."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


# The largest checkpoint (a thousand features' weights: some 10 KB) and resume point (a loss
# history of a million epochs: some 20 MB) read.
CHECKPOINT_BYTES = 16 << 20
RESUME_POINT_BYTES = 256 << 20
# A resume point's file: this line, the sha256 of the rest in hex and a newline, then the bytes
# torch.save wrote. A torn, flipped or edited file is known before torch reads a byte of it.
_RESUME_POINT = b"linreg resume point 1\n"


class UnusableResumePoint(PipelineError):
    """A resume point that cannot be used: not one, torn, edited, or of another run."""


def save_resume_point(path: Path, fingerprint: str, state: dict[str, Any]) -> None:
    """The state of the run `fingerprint` (tensors and plain containers), atomically: a kill
    mid-write leaves the previous resume point as it was."""
    body = _saved_bytes({"fingerprint": fingerprint, "state": state})
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


def load_model(path: str | Path) -> Model:
    """A fresh model of the checkpoint's kind with its weights (standardised as it was
    trained), in eval mode."""
    path = Path(path)
    data = read_bytes(path, "run the train stage first", CHECKPOINT_BYTES)
    if not zipfile.is_zipfile(io.BytesIO(data)):  # torch.save always writes a zip archive
        raise PipelineError(f"{path}: not a readable checkpoint (not a torch.save zip archive)")
    _refuse_inflation(path, data)
    try:
        # weights_only: tensors and plain containers only; a pickled object that would run
        # code on load is refused, not executed.
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PipelineError(f"{path}: not a readable checkpoint ({shorten(reason)})") from None
    if not isinstance(state, dict) or state.get("model") not in MODELS:
        raise PipelineError(
            f"{path}: not a linreg checkpoint (no 'model' entry naming one of {', '.join(MODELS)})"
        )
    kind, weights = state["model"], state.get("state_dict")
    if not isinstance(weights, dict) or not all(
        isinstance(value, torch.Tensor) for value in weights.values()
    ):
        raise PipelineError(f"{path}: not a linreg checkpoint (its state_dict is not tensors)")
    names = list(MODELS[kind]().state_dict())  # the same for any number of features
    missing = [name for name in names if name not in weights]
    unexpected = [name for name in weights if name not in names]
    if missing or unexpected:
        raise PipelineError(
            f"{path}: weights do not fit model {kind!r}: missing {', '.join(missing) or 'none'}; "
            f"unexpected {', '.join(unexpected) or 'none'} (a checkpoint of another model?)"
        )
    features = input_features(kind, weights)
    if features > MAX_FEATURES:
        raise PipelineError(
            f"{path}: weights do not fit model {kind!r}: they take {features:,} features, "
            f"at most {MAX_FEATURES:,} are allowed"
        )
    # 0: a weight without a feature axis, refused below; in the weights' precision, if theirs
    # is one that train.dtype names (else every tensor is refused as not float32)
    model = MODELS[kind](max(features, 1)).to(_precision(weights))
    for name, expected in model.state_dict().items():
        problem = tensor_problem(weights[name], expected)
        if problem:
            raise PipelineError(f"{path}: weights do not fit model {kind!r}: {name} {problem}")
    model.load_state_dict(weights)
    if "standardize" not in state:
        return model.eval()
    scaling = _scaling(path, state["standardize"], features, _precision(weights))
    return Standardized(model, scaling).eval()


# The precisions a checkpoint's tensors may have: train.dtype's
_PRECISIONS = (torch.float32, torch.float64)


def _precision(weights: dict[str, torch.Tensor]) -> torch.dtype:
    """The precision of a checkpoint's first tensor when train.dtype could have made it, else
    float32 (the tensors are then refused as not of it)."""
    first = next(iter(weights.values()), None)
    return first.dtype if first is not None and first.dtype in _PRECISIONS else torch.float32


def _scaling(path: Path, stats: object, features: int, dtype: torch.dtype) -> Scaling:
    """The statistics a standardised checkpoint holds, checked: of the weights' dtype."""
    shapes = {"x_mean": (features,), "x_std": (features,), "y_mean": (1,), "y_std": (1,)}
    if not isinstance(stats, dict) or sorted(stats) != sorted(shapes):
        raise PipelineError(f"{path}: its standardize entry is not {', '.join(_SCALING)}")
    for name, shape in shapes.items():
        problem = tensor_problem(stats[name], torch.empty(shape, dtype=dtype))
        if problem is None and name.endswith("std") and not bool((stats[name] > 0).all()):
            problem = "holds a standard deviation that is not positive"
        if problem:
            raise PipelineError(f"{path}: standardize.{name} {problem}")
    return Scaling(
        x_mean=stats["x_mean"].numpy(),
        x_std=stats["x_std"].numpy(),
        y_mean=stats["y_mean"].item(),
        y_std=stats["y_std"].item(),
    )


def _refuse_inflation(path: Path, data: bytes) -> None:
    """torch.save stores its entries uncompressed, so they can never add up to more than the
    file itself: a checkpoint whose entries claim more (a zip bomb) would be read into memory
    until the process dies, and is refused before torch reads it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            claimed = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as error:
        raise PipelineError(f"{path}: not a readable checkpoint ({error})") from None
    size = len(data)
    if claimed > size:
        raise PipelineError(
            f"{path}: not a torch.save checkpoint: its entries claim {claimed:,} bytes "
            f"unpacked in a file of {size:,} (torch.save does not compress)"
        )
