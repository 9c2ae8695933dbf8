"""The lesson's two models of a straight line, for k input features, and the wrapper that
keeps a model trained on standardised data in the data's own units.

A model kind is an nn.Module class, registered in conventions.MODELS, that gives
- `kind`: its name in train.model and in checkpoints;
- `__init__(features)`: its first weights for `features` inputs, drawn from torch's global
  generator (fit seeds it);
- `input_weight`: the name of the state_dict tensor whose last dimension is the number of
  features, which a checkpoint's reader needs to build the model before loading it;
- `forward(x)`: (n, k) -> (n, 1).
A line also gives `coefficients()`, its weights (k,) and bias in float64: evaluate writes them
as the weight and bias metrics, which a model that is not a line does without; and
`line_parameters()`, the nn.Parameters of its k weights and its bias, which a large update
trains in one pass (core/fused.py) where autograd would take a dozen. Nothing else in the
pipeline looks inside a model.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from linreg.core.conventions import MODELS


class ParameterModel(nn.Module):
    """The lesson's first model: nn.Parameters (a weight per feature, a bias); x @ weight + bias."""

    kind = "parameters"
    input_weight = "weight"

    def __init__(self, features: int = 1) -> None:
        super().__init__()
        # Order matters: weight draws from the seeded generator before bias, as in the lesson
        # (k = 1 draws exactly its two numbers).
        self.weight = nn.Parameter(torch.randn(features))
        self.bias = nn.Parameter(torch.randn(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (n, k) @ (k, 1) -> (n, 1)
        y: torch.Tensor = x @ self.weight.unsqueeze(1) + self.bias
        return y

    def coefficients(self) -> tuple[np.ndarray, float]:
        """The fitted weights (k,) and bias, in float64."""
        return self.weight.detach().double().numpy(), self.bias.item()

    def line_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight, self.bias


class LinearLayerModel(nn.Module):
    """The lesson's second model: one nn.Linear(k, 1)."""

    kind = "linear"
    input_weight = "linear.weight"

    def __init__(self, features: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.linear(x)  # (n, 1)
        return y

    def coefficients(self) -> tuple[np.ndarray, float]:
        return self.linear.weight.detach().double().numpy()[0], self.linear.bias.item()

    def line_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.linear.weight, self.linear.bias  # (1, k) and (1,)


def model_class(kind: str) -> type[nn.Module]:
    """The class of a kind that conventions.MODELS registers."""
    module, name = MODELS[kind].split(":")
    cls: type[nn.Module] = getattr(importlib.import_module(module), name)
    return cls


def build_model(kind: str, features: int = 1, dtype: str = "float32") -> nn.Module:
    """A freshly initialised model of the given kind (draws from torch's global generator), in
    `dtype` (train.dtype): drawn in float32 whatever the dtype, so that a float64 model starts
    from the same numbers as the lesson's."""
    return model_class(kind)(features).to(getattr(torch, dtype))


def input_features(kind: str, state_dict: dict[str, torch.Tensor]) -> int:
    """How many features a model of `kind` with these weights takes (0 if they do not say)."""
    return _features_in(model_class(kind), state_dict)


def model_features(model: nn.Module) -> int:
    """How many features a model (standardised or not) takes."""
    inner = _unstandardized(model)
    return _features_in(type(inner), inner.state_dict())


def _features_in(cls: type[nn.Module], state_dict: dict[str, torch.Tensor]) -> int:
    weight = state_dict.get(cls.input_weight)  # type: ignore[attr-defined]
    if not isinstance(weight, torch.Tensor) or weight.dim() == 0:
        return 0
    return int(weight.shape[-1])


def line_coefficients(model: nn.Module) -> tuple[np.ndarray, float] | None:
    """The weights (k,) and bias of the model's line in the data's units, in float64; None for
    a model that is not a line (one without coefficients())."""
    coefficients = getattr(_unstandardized(model), "coefficients", None)
    if coefficients is None:
        return None
    weights, bias = coefficients()
    if not isinstance(model, Standardized):
        return weights, bias
    s = model.scaling
    weights = weights * s.y_std / s.x_std.astype(np.float64)
    shift = math.fsum(weights * s.x_mean.astype(np.float64))  # exactly rounded: any CPU
    return weights, s.y_mean + s.y_std * bias - shift


def _unstandardized(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, Standardized) else model


@dataclass(frozen=True)
class Scaling:
    """The train set's means and standard deviations, which standardise the data."""

    x_mean: np.ndarray  # (k,) of the model's dtype (train.dtype)
    x_std: np.ndarray  # (k,) of that dtype, all > 0
    y_mean: float  # a value of that dtype
    y_std: float  # a value of that dtype, > 0


class Standardized(nn.Module):
    """`model` trained on standardised data, used in the data's units: the features are scaled
    by the train set's means and standard deviations on the way in, y unscaled on the way out."""

    x_mean: torch.Tensor
    x_std: torch.Tensor
    y_mean: torch.Tensor
    y_std: torch.Tensor

    def __init__(self, model: nn.Module, scaling: Scaling) -> None:
        super().__init__()
        self.model = model
        self.kind = model.kind
        self.scaling = scaling
        self.register_buffer("x_mean", torch.from_numpy(scaling.x_mean))  # (k,)
        self.register_buffer("x_std", torch.from_numpy(scaling.x_std))  # (k,)
        dtype = self.x_mean.dtype
        self.register_buffer("y_mean", torch.tensor([scaling.y_mean], dtype=dtype))
        self.register_buffer("y_std", torch.tensor([scaling.y_std], dtype=dtype))

    def scale_x(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.x_mean) / self.x_std  # (n, k)

    def scale_y(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.y_mean) / self.y_std  # (n, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.model(self.scale_x(x)) * self.y_std + self.y_mean
        return y  # (n, 1)


def kind_problem(value: object) -> str | None:
    """What keeps `value` from being a plain tensor a model can hold (a torch.Tensor itself,
    dense, on the cpu, not nested or quantized), or None: every other kind fails deep in torch
    (a meta tensor has no values, a nested one no sizes), or passes with a warning. Checked
    before anything else is asked of a tensor."""
    if not isinstance(value, torch.Tensor):
        return f"is {type(value).__name__}, not a tensor"
    if type(value) is not torch.Tensor:
        return f"is a {type(value).__name__}, not a plain tensor"
    if value.is_nested:
        return "is a nested tensor, not a dense one"
    if value.layout != torch.strided:
        return f"is a {value.layout} tensor, not a dense one"
    if value.is_quantized:
        return "is a quantized tensor"
    if value.device.type != "cpu":
        return f"is on the {value.device.type} device, not the cpu"
    return None


def tensor_problem(value: object, like: torch.Tensor) -> str | None:
    """What keeps `value` from standing in for `like` (a plain tensor, kind_problem, of its
    dtype and shape, all finite), or None."""
    if problem := kind_problem(value):
        return problem
    assert isinstance(value, torch.Tensor)
    if value.dtype != like.dtype:
        return f"is {value.dtype}, expected {like.dtype}"
    if value.shape != like.shape:
        return f"has shape {tuple(value.shape)}, expected {tuple(like.shape)}"
    if value.is_floating_point() and not torch.isfinite(value).all():
        return "holds NaN or infinite values"
    return None
