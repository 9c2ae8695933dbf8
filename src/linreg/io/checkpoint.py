"""The trained model's checkpoint: byte-stable, and loaded without running pickled code."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from linreg.core.conventions import MAX_FEATURES, MODELS
from linreg.core.errors import PipelineError, shorten
from linreg.core.model import (
    Scaling,
    Standardized,
    input_features,
    kind_problem,
    model_class,
    tensor_problem,
)
from linreg.io.files import read_bytes, write_bytes_atomic

# What a standardised model's checkpoint adds: the train set's statistics (tensors).
_SCALING = ("x_mean", "x_std", "y_mean", "y_std")


def save_checkpoint(path: str | Path, model: nn.Module) -> None:
    """Save the model's kind and cpu weights, and a standardised model's statistics."""
    inner = model.model if isinstance(model, Standardized) else model
    state: dict[str, object] = {
        "model": inner.kind,
        "state_dict": {name: value.detach().cpu() for name, value in inner.state_dict().items()},
    }
    if isinstance(model, Standardized):
        state["standardize"] = {name: getattr(model, name).detach().cpu() for name in _SCALING}
    write_bytes_atomic(path, saved_bytes(state))


def saved_bytes(state: dict[str, Any]) -> bytes:
    """torch.save's bytes, saved into a BytesIO: torch.save names the zip's inner folder after
    the file it writes, so saving to a temporary file and renaming it would change them."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


# The largest checkpoint read: a thousand features' weights are some 10 KB.
CHECKPOINT_BYTES = 16 << 20


def load_model(path: str | Path) -> nn.Module:
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
    kind = state.get("model") if isinstance(state, dict) else None
    if not isinstance(kind, str) or kind not in MODELS:
        raise PipelineError(
            f"{path}: not a linreg checkpoint (no 'model' entry naming one of {', '.join(MODELS)})"
        )
    weights = state.get("state_dict")
    if not isinstance(weights, dict) or not all(isinstance(name, str) for name in weights):
        raise PipelineError(f"{path}: not a linreg checkpoint (its state_dict is not tensors)")
    for name, value in weights.items():  # before any is asked its shape (input_features)
        if problem := kind_problem(value):
            raise PipelineError(f"{path}: weights do not fit model {kind!r}: {name} {problem}")
    names = list(model_class(kind)(1).state_dict())  # the same for any number of features
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
    model = model_class(kind)(max(features, 1)).to(_precision(weights))
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
