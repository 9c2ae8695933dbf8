"""The lesson's two models of a straight line."""

from __future__ import annotations

import torch
from torch import nn


class ParameterModel(nn.Module):
    """The lesson's first model: two nn.Parameters and weight * x + bias."""

    kind = "parameters"

    def __init__(self) -> None:
        super().__init__()
        # Order matters: weight draws from the seeded generator before bias, as in the lesson.
        self.weight = nn.Parameter(torch.randn(1))
        self.bias = nn.Parameter(torch.randn(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x + self.bias  # (n, 1)

    def line(self) -> tuple[float, float]:
        """The fitted (weight, bias)."""
        return self.weight.item(), self.bias.item()


class LinearLayerModel(nn.Module):
    """The lesson's second model: one nn.Linear(1, 1)."""

    kind = "linear"

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.linear(x)  # (n, 1)
        return y

    def line(self) -> tuple[float, float]:
        return self.linear.weight.item(), self.linear.bias.item()


LineModel = ParameterModel | LinearLayerModel
MODELS: dict[str, type[LineModel]] = {cls.kind: cls for cls in (ParameterModel, LinearLayerModel)}


def build_model(kind: str) -> LineModel:
    """A freshly initialised model of the given kind (draws from torch's global generator)."""
    return MODELS[kind]()
