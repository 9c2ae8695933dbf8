"""The best a line can do on the train set for each train.loss, and the best a constant can do,
in float64: what train_loss_gap measures the trained model against. Pure numpy, no torch.

The losses are torch's, in the units the optimizer saw (the residuals divided by the train
set's standard deviation of y when train.standardize is on: only Huber's depends on the units).
Least squares is solved in closed form; least absolute deviations and Huber's loss by
iteratively reweighted least squares (IRLS), which lowers the loss at every step and stops when
a step no longer does (within float64 rounding)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Each loss of train.loss as the mean of a penalty of the residuals (torch's L1Loss, MSELoss,
# HuberLoss with delta 1)
PENALTIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "l1": np.abs,
    "mse": np.square,
    "huber": lambda r: np.where(np.abs(r) < 1.0, 0.5 * r * r, np.abs(r) - 0.5),
}
# IRLS's weight for each residual: the penalty as a weighted square near it
_WEIGHTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "l1": lambda r: 1.0 / np.maximum(np.abs(r), 1e-12 * max(float(np.abs(r).max()), 1e-300)),
    "huber": lambda r: 1.0 / np.maximum(np.abs(r), 1.0),
}
MAX_IRLS_STEPS = 500


def mean_loss(loss: str, residuals: np.ndarray) -> float:
    return float(np.mean(PENALTIES[loss](residuals)))


def best_fit_loss(loss: str, design: np.ndarray, y: np.ndarray) -> float:
    """The smallest mean `loss` of y - design @ beta over every beta: design (n, p), y (n,)."""
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    best = mean_loss(loss, y - design @ beta)
    if loss == "mse":
        return best
    for _ in range(MAX_IRLS_STEPS):
        root = np.sqrt(_WEIGHTS[loss](y - design @ beta))
        step, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
        value = mean_loss(loss, y - design @ step)
        if not value < best * (1 - 1e-15):  # no longer lower: IRLS has converged
            break
        beta, best = step, value
    return best


def loss_gap(loss: str, design: np.ndarray, y: np.ndarray, trained: np.ndarray) -> float | None:
    """How much of what the best line improves on the best constant the trained predictions
    have not reached: 0 at the best line, 1 no better than the best constant (negative: better
    than the best line, as a model that is not a line can be). None when a line does no
    better than a constant (nothing to reach)."""
    best_line = best_fit_loss(loss, design, y)
    best_constant = best_fit_loss(loss, np.ones((len(y), 1)), y)
    if not best_constant > best_line:
        return None
    return (mean_loss(loss, y - trained) - best_line) / (best_constant - best_line)
