"""Predictions on the test set, the metrics that judge them and which way each one improves.
torch is imported only to predict: the experiment tooling reads the metrics without it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from linreg.artifacts import Predictions
from linreg.dataset import Dataset
from linreg.errors import PipelineError

if TYPE_CHECKING:
    from torch import nn

    from linreg.model import LineModel

Goal = Literal["lower", "higher"] | None


def _metric(goal: Goal, verdict: bool = False) -> Any:
    """A metric's field: `goal`, which way it improves (None: no better side); `verdict`, whether
    a comparison gives a verdict on it unless told which metrics to judge."""
    return field(metadata={"goal": goal, "verdict": verdict})


@dataclass(frozen=True)
class Metrics:
    """reports/metrics.json, in this order."""

    test_mae: float = _metric("lower", verdict=True)
    test_mse: float = _metric("lower")
    test_rmse: float = _metric("lower", verdict=True)
    test_r2: float | None = _metric("higher", verdict=True)  # None when test y is constant
    weight: float = _metric(None)
    bias: float = _metric(None)
    weight_error: float = _metric("lower")
    bias_error: float = _metric("lower")
    lstsq_test_mae: float = _metric("lower")  # the closed-form line's: the floor to reach

    def as_json(self) -> dict[str, float | None]:
        return asdict(self)


METRIC_GOALS: dict[str, Goal] = {f.name: f.metadata["goal"] for f in fields(Metrics)}
VERDICT_METRICS = tuple(f.name for f in fields(Metrics) if f.metadata["verdict"])


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """(n,) float32 inputs -> (n,) float32 predictions, with no autograd graph."""
    import torch

    model.eval()
    with torch.inference_mode():
        predicted: np.ndarray = model(torch.from_numpy(x).unsqueeze(1)).squeeze(1).numpy()
    return predicted


@dataclass(frozen=True)
class Errors:
    """MAE, MSE, RMSE and R² of predictions, in float64."""

    mae: float
    mse: float
    rmse: float
    r2: float | None  # undefined (None) when y is constant


def regression_errors(y: np.ndarray, y_pred: np.ndarray) -> Errors:
    y, y_pred = y.astype(np.float64), y_pred.astype(np.float64)
    error = y - y_pred
    mse = float(np.mean(error**2))
    total = float(np.sum((y - y.mean()) ** 2))
    return Errors(
        mae=float(np.mean(np.abs(error))),
        mse=mse,
        rmse=math.sqrt(mse),
        r2=1.0 - float(np.sum(error**2)) / total if total > 0 else None,
    )


def least_squares_line(train: Dataset) -> tuple[float, float]:
    """The closed-form least-squares (weight, bias) of the train set, in float64."""
    design = np.stack([train.x, np.ones_like(train.x)], axis=1).astype(np.float64)  # (n, 2)
    (weight, bias), *_ = np.linalg.lstsq(design, train.y.astype(np.float64), rcond=None)
    return float(weight), float(bias)


def evaluate(
    model: LineModel, train: Dataset, test: Dataset, true_weight: float, true_bias: float
) -> tuple[Metrics, Predictions]:
    """The metrics of reports/metrics.json, and the test predictions."""
    y_pred = predict(model, test.x)
    weight, bias = model.line()
    if not np.isfinite(y_pred).all():
        raise PipelineError(
            f"the model's predictions overflow float32 (weight {weight:g}, bias {bias:g}); "
            "no metrics written: retrain it"
        )
    lstsq_weight, lstsq_bias = least_squares_line(train)
    lstsq_pred = lstsq_weight * test.x.astype(np.float64) + lstsq_bias
    errors = regression_errors(test.y, y_pred)
    metrics = Metrics(
        test_mae=errors.mae,
        test_mse=errors.mse,
        test_rmse=errors.rmse,
        test_r2=errors.r2,
        weight=weight,
        bias=bias,
        weight_error=abs(weight - true_weight),
        bias_error=abs(bias - true_bias),
        lstsq_test_mae=regression_errors(test.y, lstsq_pred).mae,
    )
    return metrics, Predictions(test.x, test.y, y_pred)
