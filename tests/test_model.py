"""The two models: initialisation order, the contract every model kind keeps, building by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from linreg.core.conventions import MODELS
from linreg.core.model import (
    LinearLayerModel,
    ParameterModel,
    build_model,
    input_features,
    line_coefficients,
    model_features,
)


def test_parameter_model_draws_weight_then_bias():
    torch.manual_seed(42)
    model = ParameterModel()
    torch.manual_seed(42)
    weight, bias = torch.randn(1), torch.randn(1)
    assert [name for name, _ in model.named_parameters()] == ["weight", "bias"]
    assert model.weight.item() == weight.item()
    assert model.bias.item() == bias.item()
    weights, bias = model.coefficients()
    assert (weights[0], bias) == pytest.approx((0.3367, 0.1288), abs=1e-4)  # the lesson's printout


def test_linear_model_is_one_linear_layer():
    torch.manual_seed(42)
    model = LinearLayerModel()
    torch.manual_seed(42)
    reference = nn.Linear(1, 1)
    assert torch.equal(model.linear.weight, reference.weight)
    weights, bias = model.coefficients()
    assert (weights[0], bias) == pytest.approx((0.7645, 0.8300), abs=1e-4)  # the lesson's printout


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_kind_keeps_the_contract_the_pipeline_relies_on(kind):
    """core/model.py's contract: built by its name for k features, (n, k) -> (n, 1), its
    feature count read from its weights; a line's coefficients are what it computes."""
    model = build_model(kind, features=3)
    assert model.kind == kind
    assert model_features(model) == input_features(kind, model.state_dict()) == 3
    x = torch.linspace(-1, 1, 21).reshape(7, 3)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (7, 1)
    line = line_coefficients(model)
    if line is not None:
        weights, bias = line
        torch.testing.assert_close(y, x @ torch.from_numpy(weights).float().unsqueeze(1) + bias)
