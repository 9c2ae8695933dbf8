"""Predictions on the test set and the metrics that judge them."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from linreg.dataset import Dataset
from linreg.errors import PipelineError
from linreg.model import LineModel


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """(n,) float32 inputs -> (n,) float32 predictions, with no autograd graph."""
    model.eval()
    with torch.inference_mode():
        return model(torch.from_numpy(x).unsqueeze(1)).squeeze(1).numpy()


def regression_metrics(y: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """MAE, MSE, RMSE and R² in float64; R² is None when y is constant (it is undefined)."""
    y, y_pred = y.astype(np.float64), y_pred.astype(np.float64)
    error = y - y_pred
    mse = float(np.mean(error**2))
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(error))),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else None,
    }


def least_squares_line(train: Dataset) -> tuple[float, float]:
    """The closed-form least-squares (weight, bias) of the train set, in float64."""
    design = np.stack([train.x, np.ones_like(train.x)], axis=1).astype(np.float64)  # (n, 2)
    (weight, bias), *_ = np.linalg.lstsq(design, train.y.astype(np.float64), rcond=None)
    return float(weight), float(bias)


def evaluate(
    model: LineModel, train: Dataset, test: Dataset, true_weight: float, true_bias: float
) -> tuple[dict[str, float | None], np.ndarray]:
    """The flat metrics of reports/metrics.json, and the test predictions."""
    y_pred = predict(model, test.x)
    weight, bias = model.line()
    if not np.isfinite(y_pred).all():
        raise PipelineError(
            f"the model's predictions overflow float32 (weight {weight:g}, bias {bias:g}); "
            "no metrics written: retrain it"
        )
    lstsq_weight, lstsq_bias = least_squares_line(train)
    lstsq_pred = lstsq_weight * test.x.astype(np.float64) + lstsq_bias
    metrics = {f"test_{name}": value for name, value in regression_metrics(test.y, y_pred).items()}
    metrics |= {
        "weight": weight,
        "bias": bias,
        "weight_error": abs(weight - true_weight),
        "bias_error": abs(bias - true_bias),
        "lstsq_test_mae": regression_metrics(test.y, lstsq_pred)["mae"],
    }
    return metrics, y_pred
