"""A model that is not a line, added the way docs/development.md says a model kind is added:
tests/test_resume.py copies this one file into a test project as
src/linreg/core/one_hidden_layer.py and gives it its line in conventions.MODELS. The product
keeps the lesson's two models."""

import torch
from torch import nn


class OneHiddenLayer(nn.Module):
    """tanh(x W1 + b1) W2 + b2, with eight hidden units."""

    kind = "one_hidden_layer"
    input_weight = "hidden.weight"  # (8, k)

    def __init__(self, features: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(features, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.out(torch.tanh(self.hidden(x)))  # (n, k) -> (n, 8) -> (n, 1)
        return y
