"""The trained model's checkpoint and a training run's resume point: byte-stable, and loaded
without running pickled code."""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from linreg.core.conventions import MAX_FEATURES
from linreg.core.errors import PipelineError, shorten
from linreg.core.model import MODELS, Model, Scaling, Standardized, input_features
from linreg.io.artifacts import write_train_log
from linreg.io.files import all_or_none, require_file, write_bytes_atomic

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
    _save(path, state)


def save_fit(model_path: str | Path, log_path: str | Path, result: FitResult) -> None:
    """The train stage's outputs, the checkpoint and the train log: both written or neither."""
    with all_or_none():
        save_checkpoint(model_path, result.model)
        write_train_log(log_path, result.history)


def _save(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save into a BytesIO first: torch.save names the zip's inner folder after the file
    it writes, so saving to a temporary file and renaming it would change the bytes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


@dataclass(frozen=True)
class ResumePoint:
    """A training run's state (tensors and plain containers) and the fingerprint of the run it
    belongs to (None: a file that cannot be read as one)."""

    fingerprint: str | None
    state: dict[str, Any]


def save_resume_point(path: Path, point: ResumePoint) -> None:
    """Atomic: a kill mid-write leaves the previous resume point as it was."""
    _save(path, {"fingerprint": point.fingerprint, "state": point.state})


def read_resume_point(path: Path) -> ResumePoint | None:
    """The resume point at `path`; None when there is none."""
    try:
        saved = torch.load(path, weights_only=True)
    except FileNotFoundError:
        return None
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile):
        saved = None
    if isinstance(saved, dict) and isinstance(saved.get("state"), dict):
        return ResumePoint(saved.get("fingerprint"), saved["state"])
    return ResumePoint(None, {})


def load_model(path: str | Path) -> Model:
    """A fresh model of the checkpoint's kind with its weights (standardised as it was
    trained), in eval mode."""
    path = require_file(path, "run the train stage first")
    if not zipfile.is_zipfile(path):  # torch.save always writes a zip archive
        raise PipelineError(f"{path}: not a readable checkpoint (not a torch.save zip archive)")
    _refuse_inflation(path)
    try:
        # weights_only: tensors and plain containers only; a pickled object that would run
        # code on load is refused, not executed.
        state = torch.load(path, map_location="cpu", weights_only=True)
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
    model = MODELS[kind](max(features, 1))  # 0: a weight without a feature axis, refused below
    expected = model.state_dict()
    for name, value in weights.items():
        if value.shape != expected[name].shape:
            raise PipelineError(
                f"{path}: weights do not fit model {kind!r}: {name} has shape "
                f"{tuple(value.shape)}, expected {tuple(expected[name].shape)}"
            )
        if not torch.isfinite(value).all():
            raise PipelineError(
                f"{path}: {name} holds NaN or infinite values; not a usable trained model"
            )
    model.load_state_dict(weights)
    if "standardize" not in state:
        return model.eval()
    return Standardized(model, _scaling(path, state["standardize"], features)).eval()


def _scaling(path: Path, stats: object, features: int) -> Scaling:
    """The statistics a standardised checkpoint holds, checked."""
    shapes = {"x_mean": (features,), "x_std": (features,), "y_mean": (1,), "y_std": (1,)}
    if not isinstance(stats, dict) or sorted(stats) != sorted(shapes):
        raise PipelineError(f"{path}: its standardize entry is not {', '.join(_SCALING)}")
    for name, shape in shapes.items():
        value = stats[name]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            raise PipelineError(f"{path}: standardize.{name} is not a tensor of shape {shape}")
        positive = not name.endswith("std") or bool((value > 0).all())
        if not torch.isfinite(value).all() or not positive:
            allowed = "finite positive numbers" if name.endswith("std") else "finite numbers"
            raise PipelineError(f"{path}: standardize.{name} holds other values than {allowed}")
    return Scaling(
        x_mean=stats["x_mean"].float().numpy(),
        x_std=stats["x_std"].float().numpy(),
        y_mean=stats["y_mean"].item(),
        y_std=stats["y_std"].item(),
    )


def _refuse_inflation(path: Path) -> None:
    """torch.save stores its entries uncompressed, so they can never add up to more than the
    file itself: a checkpoint whose entries claim more (a zip bomb) would be read into memory
    until the process dies, and is refused before torch reads it."""
    try:
        with zipfile.ZipFile(path) as archive:
            claimed = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as error:
        raise PipelineError(f"{path}: not a readable checkpoint ({error})") from None
    size = path.stat().st_size
    if claimed > size:
        raise PipelineError(
            f"{path}: not a torch.save checkpoint: its entries claim {claimed:,} bytes "
            f"unpacked in a file of {size:,} (torch.save does not compress)"
        )
