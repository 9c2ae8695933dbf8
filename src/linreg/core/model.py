"""The lesson's two models of a straight line, for k input features, and the wrapper that
keeps a model trained on standardised data in the data's own units."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class ParameterModel(nn.Module):
    """The lesson's first model: nn.Parameters (a weight per feature, a bias); x @ weight + bias."""

    kind = "parameters"

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


class LinearLayerModel(nn.Module):
    """The lesson's second model: one nn.Linear(k, 1)."""

    kind = "linear"

    def __init__(self, features: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.linear(x)  # (n, 1)
        return y

    def coefficients(self) -> tuple[np.ndarray, float]:
        return self.linear.weight.detach().double().numpy()[0], self.linear.bias.item()


LineModel = ParameterModel | LinearLayerModel
MODELS: dict[str, type[LineModel]] = {cls.kind: cls for cls in (ParameterModel, LinearLayerModel)}


def build_model(kind: str, features: int = 1, dtype: str = "float32") -> LineModel:
    """A freshly initialised model of the given kind (draws from torch's global generator), in
    `dtype` (train.dtype): drawn in float32 whatever the dtype, so that a float64 model starts
    from the same numbers as the lesson's."""
    return MODELS[kind](features).to(getattr(torch, dtype))


def input_features(kind: str, state_dict: dict[str, torch.Tensor]) -> int:
    """How many features a model of `kind` with these weights takes (0 if they do not say)."""
    weight = state_dict.get("linear.weight" if kind == LinearLayerModel.kind else "weight")
    if not isinstance(weight, torch.Tensor) or weight.dim() == 0:
        return 0
    return int(weight.shape[-1])


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

    def __init__(self, model: LineModel, scaling: Scaling) -> None:
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

    def coefficients(self) -> tuple[np.ndarray, float]:
        """The weights and bias of the same line in the data's units, in float64."""
        weights, bias = self.model.coefficients()
        s = self.scaling
        weights = weights * s.y_std / s.x_std.astype(np.float64)
        shift = math.fsum(weights * s.x_mean.astype(np.float64))  # exactly rounded: any CPU
        return weights, s.y_mean + s.y_std * bias - shift


Model = LineModel | Standardized


def tensor_problem(value: object, like: torch.Tensor) -> str | None:
    """What keeps `value` from standing in for `like` (a dense, real tensor of its dtype and
    shape, all finite), or None: a sparse or complex tensor would fail deep in torch, or pass
    with a warning."""
    if not isinstance(value, torch.Tensor):
        return f"is {type(value).__name__}, not a tensor"
    if value.layout != torch.strided:
        return f"is a {value.layout} tensor, not a dense one"
    if value.dtype != like.dtype:
        return f"is {value.dtype}, expected {like.dtype}"
    if value.shape != like.shape:
        return f"has shape {tuple(value.shape)}, expected {tuple(like.shape)}"
    if value.is_floating_point() and not torch.isfinite(value).all():
        return "holds NaN or infinite values"
    return None
