"""The best line and the best constant for each loss, against scikit-learn's and scipy's fits
of the same objective; train_loss_gap's two ends."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.datasets import load_diabetes
from sklearn.linear_model import QuantileRegressor

from linreg.core.optimum import PENALTIES, best_fit_loss, loss_gap, mean_loss

X, Y = load_diabetes(return_X_y=True)
Y = (Y - Y.mean()) / Y.std()  # standardised, as the optimizer sees it: Huber's loss has units
DESIGN = np.c_[X, np.ones(len(Y))]
CONSTANT = np.ones((len(Y), 1))


def reference(loss: str, design: np.ndarray) -> float:
    """The smallest mean loss by a trusted solver: least absolute deviations by scikit-learn's
    linear program, the others by scipy's BFGS from the least-squares start."""
    if loss == "l1":
        fitted = QuantileRegressor(quantile=0.5, alpha=0, fit_intercept=False, solver="highs")
        return mean_loss(loss, Y - fitted.fit(design, Y).predict(design))
    start, *_ = np.linalg.lstsq(design, Y, rcond=None)
    found = minimize(lambda b: mean_loss(loss, Y - design @ b), start, method="BFGS", tol=1e-14)
    return float(found.fun)


@pytest.mark.parametrize("loss", sorted(PENALTIES))
@pytest.mark.parametrize("design", [DESIGN, CONSTANT], ids=["line", "constant"])
def test_the_best_fit_is_the_trusted_solvers(loss, design):
    assert best_fit_loss(loss, design, Y) == pytest.approx(reference(loss, design), rel=1e-9)


@pytest.mark.parametrize("loss", sorted(PENALTIES))
def test_the_gap_is_0_at_the_best_line_and_1_at_the_best_constant(loss):
    line, *_ = np.linalg.lstsq(DESIGN, Y, rcond=None)
    if loss == "mse":
        assert loss_gap(loss, DESIGN, Y, DESIGN @ line) == pytest.approx(0, abs=1e-12)
    median = np.full(len(Y), np.median(Y))
    if loss == "l1":
        assert loss_gap(loss, DESIGN, Y, median) == pytest.approx(1, abs=1e-12)
    halfway = loss_gap(loss, DESIGN, Y, DESIGN @ (line / 2))
    assert 0 < halfway < 1


def test_no_gap_where_a_line_does_no_better_than_a_constant():
    assert loss_gap("mse", DESIGN, np.full(len(Y), 3.0), np.zeros(len(Y))) is None
