"""The two models: initialisation order, forward shapes, and building by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from linreg.core.model import MODELS, LinearLayerModel, ParameterModel, build_model


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
def test_forward_is_weight_times_x_plus_bias(kind):
    model = build_model(kind)
    assert model.kind == kind
    x = torch.linspace(-1, 1, 7).unsqueeze(1)  # (7, 1)
    (weight,), bias = model.coefficients()
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (7, 1)
    torch.testing.assert_close(y, float(weight) * x + bias)
