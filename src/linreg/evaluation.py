"""Predictions on the test set, the metrics that judge them and which way each one improves.
torch is imported only to predict: the experiment tooling reads the metrics without it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from linreg.artifacts import Predictions, Truth
from linreg.dataset import Dataset, line_values
from linreg.errors import PipelineError, shorten

if TYPE_CHECKING:
    from torch import nn

    from linreg.model import Model

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
    weight: float | None = _metric(None)  # the fitted weight; None for k > 1 features
    bias: float = _metric(None)
    # distance to the true line, when it is known (synthetic data; else None): the largest
    # error over the k weights (|weight - true weight| for one feature)
    weight_error: float | None = _metric("lower")
    bias_error: float | None = _metric("lower")
    lstsq_test_mae: float = _metric("lower")  # the closed-form line's: the floor to reach

    def as_json(self) -> dict[str, float | None]:
        return asdict(self)


METRIC_GOALS: dict[str, Goal] = {f.name: f.metadata["goal"] for f in fields(Metrics)}
VERDICT_METRICS = tuple(f.name for f in fields(Metrics) if f.metadata["verdict"])


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """(n, k) float32 inputs -> (n,) float32 predictions, with no autograd graph."""
    import torch

    model.eval()
    with torch.inference_mode():
        predicted: np.ndarray = model(torch.from_numpy(x)).squeeze(1).numpy()
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


def least_squares_line(train: Dataset) -> tuple[np.ndarray, float]:
    """The closed-form least-squares weights (k,) and bias of the train set, in float64."""
    design = np.column_stack([train.x, np.ones(len(train), dtype=np.float32)])  # (n, k + 1)
    solution, *_ = np.linalg.lstsq(
        design.astype(np.float64), train.y.astype(np.float64), rcond=None
    )
    return solution[:-1], float(solution[-1])


def evaluate(
    model: Model, train: Dataset, test: Dataset, truth: Truth | None
) -> tuple[Metrics, Predictions]:
    """The metrics of reports/metrics.json, and the test predictions."""
    if model_features(model) != test.x.shape[1]:
        raise PipelineError(
            f"the model takes {model_features(model)} feature(s), the data has "
            f"{test.x.shape[1]} ({shorten(', '.join(test.features))}): retrain it on this data"
        )
    y_pred = predict(model, test.x)
    weights, bias = model.coefficients()
    if not np.isfinite(y_pred).all():
        raise PipelineError(
            f"the model's predictions overflow float32 (weights {_numbers(weights)}, bias "
            f"{bias:g}); no metrics written: retrain it"
        )
    lstsq_weights, lstsq_bias = least_squares_line(train)
    errors = regression_errors(test.y, y_pred)
    metrics = Metrics(
        test_mae=errors.mae,
        test_mse=errors.mse,
        test_rmse=errors.rmse,
        test_r2=errors.r2,
        weight=float(weights[0]) if len(weights) == 1 else None,
        bias=bias,
        weight_error=_largest_error(weights, truth.weights) if truth else None,
        bias_error=abs(bias - truth.bias) if truth else None,
        lstsq_test_mae=regression_errors(
            test.y, line_values(lstsq_weights, lstsq_bias, test.x)
        ).mae,
    )
    return metrics, Predictions(test, y_pred)


def model_features(model: Model) -> int:
    """How many features the model takes."""
    return len(model.coefficients()[0])


def _largest_error(weights: np.ndarray, true_weights: tuple[float, ...]) -> float:
    if len(true_weights) != len(weights):
        raise PipelineError(
            f"the data was drawn with {len(true_weights)} weight(s), the model has "
            f"{len(weights)}: retrain it"
        )
    return max(abs(float(w) - t) for w, t in zip(weights, true_weights, strict=True))


def _numbers(values: np.ndarray) -> str:
    return ", ".join(f"{value:g}" for value in values[:5]) + (" ..." if len(values) > 5 else "")
