"""Predictions on the test set, the metrics that judge them and which way each one improves.
torch is imported only to predict: the experiment tooling reads the metrics without it."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from linreg.core.dataset import Dataset, line_values, require_same_columns
from linreg.core.errors import PipelineError, shorten
from linreg.core.optimum import loss_gap
from linreg.core.records import Coefficients, Predictions, Truth

if TYPE_CHECKING:
    import torch
    from torch import nn


Goal = Literal["lower", "higher"] | None


def _metric(goal: Goal, verdict: bool = False, line: bool = False) -> Any:
    """A metric's field: `goal`, which way it improves (None: no better side); `verdict`, whether
    a comparison gives a verdict on it unless told which metrics to judge; `line`, whether only
    a model that is a line has it (core/model.py)."""
    return field(metadata={"goal": goal, "verdict": verdict, "line": line})


@dataclass(frozen=True)
class Metrics:
    """reports/metrics.json, in this order."""

    test_mae: float = _metric("lower", verdict=True)
    test_mse: float = _metric("lower")
    test_rmse: float = _metric("lower", verdict=True)
    test_r2: float | None = _metric("higher", verdict=True)  # None when test y is constant
    weight: float | None = _metric(None, line=True)  # the fitted weight; None for k > 1 features
    bias: float | None = _metric(None, line=True)  # None (and absent) when not a line
    # distance to the true line, when it is known (synthetic data; else None): the largest
    # error over the k weights (|weight - true weight| for one feature)
    weight_error: float | None = _metric("lower", line=True)
    bias_error: float | None = _metric("lower", line=True)
    # the test MAE of the train set's least-squares line: a reference (a trained model can beat
    # it on a small test set), not a bound
    lstsq_test_mae: float = _metric("lower")
    # how far training stopped from the best line for train.loss on the train set (0: there;
    # 1: no better than the best constant; core/optimum.py); None where it is not computed
    train_loss_gap: float | None = _metric("lower")

    def as_json(self) -> dict[str, float | None]:
        """The metrics by name; a model that is not a line (no bias) has no LINE_METRICS."""
        values = asdict(self)
        return {k: v for k, v in values.items() if self.bias is not None or k not in LINE_METRICS}


METRIC_GOALS: dict[str, Goal] = {f.name: f.metadata["goal"] for f in fields(Metrics)}
VERDICT_METRICS = tuple(f.name for f in fields(Metrics) if f.metadata["verdict"])
LINE_METRICS = tuple(f.name for f in fields(Metrics) if f.metadata["line"])
# A train_loss_gap above this is "not converged": a millionth of the way from the best line to
# the best constant (SGD on real data stops some 1e-4 to 1e-2 away, L-BFGS some 1e-9)
CONVERGED_GAP = 1e-6


def not_converged_line(metrics: Metrics, loss: str) -> str | None:
    """The line the evaluate stage prints when training stopped short of the best line."""
    gap = metrics.train_loss_gap
    if gap is None or gap <= CONVERGED_GAP:
        return None
    return (
        f"not converged: train_loss_gap = {gap:.3g}, above {CONVERGED_GAP:g} (the trained "
        f"model's {loss} loss on the train set is that share of the way from the best line's to "
        "the best constant's); try train.optimizer: lbfgs with train.standardize: true, or more "
        "train.epochs (docs/your-own-data.md)"
    )


@dataclass(frozen=True)
class Evaluation:
    metrics: Metrics
    coefficients: Coefficients


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """(n, k) inputs -> (n,) predictions in the model's precision, with no autograd graph."""
    import torch

    model.eval()
    with torch.inference_mode():  # float64 data may meet a float32 model here, and the reverse
        predicted: np.ndarray = model(torch.from_numpy(x).to(_dtype(model))).squeeze(1).numpy()
    return predicted


def data_precision(model: nn.Module, recorded: type[np.floating]) -> type[np.floating]:
    """The precision to read the data in: as generate recorded it (a CSV source's float64), or
    the model's (train.dtype), whichever is higher."""
    return np.float64 if model_precision(model) == "float64" else recorded


def model_precision(model: nn.Module) -> str:
    """The model's dtype by name: float32 or float64 (train.dtype)."""
    return str(_dtype(model)).removeprefix("torch.")


def _dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


@dataclass(frozen=True)
class Errors:
    """MAE, MSE, RMSE and R² of predictions, in float64."""

    mae: float
    mse: float
    rmse: float
    r2: float | None  # undefined (None) when y is constant


@dataclass(frozen=True)
class ErrorSums:
    """What the errors of predictions need of some rows, in float64: the rows, the sums of the
    absolute and the squared errors, and the targets' mean and sum of squared deviations from
    it. Blocks of rows add up (the deviations as Chan, Golub and LeVeque combine them), so that
    the metrics of a test set that comes a block at a time need no more than a block."""

    rows: int = 0
    absolute: float = 0.0
    squared: float = 0.0
    y_mean: float = 0.0
    y_deviations: float = 0.0

    @classmethod
    def of(cls, y: np.ndarray, y_pred: np.ndarray) -> ErrorSums:
        y, y_pred = y.astype(np.float64), y_pred.astype(np.float64)
        error = y - y_pred
        y_mean = y.mean()
        return cls(
            rows=len(y),
            absolute=float(np.sum(np.abs(error))),
            squared=float(np.sum(error**2)),
            y_mean=float(y_mean),
            y_deviations=float(np.sum((y - y_mean) ** 2)),
        )

    def __add__(self, other: ErrorSums) -> ErrorSums:
        if not self.rows:  # the first block's sums, bit for bit
            return other
        rows = self.rows + other.rows
        shift = other.y_mean - self.y_mean
        return ErrorSums(
            rows=rows,
            absolute=self.absolute + other.absolute,
            squared=self.squared + other.squared,
            y_mean=self.y_mean + shift * other.rows / rows,
            y_deviations=self.y_deviations
            + other.y_deviations
            + shift**2 * self.rows * other.rows / rows,
        )

    def errors(self) -> Errors:
        mse = self.squared / self.rows
        return Errors(
            mae=self.absolute / self.rows,
            mse=mse,
            rmse=math.sqrt(mse),
            r2=1.0 - self.squared / self.y_deviations if self.y_deviations > 0 else None,
        )


def least_squares_line(train: Dataset) -> tuple[np.ndarray, float]:
    """The closed-form least-squares weights (k,) and bias of the train set, in float64."""
    solution, *_ = np.linalg.lstsq(_design(train), train.y.astype(np.float64), rcond=None)
    return solution[:-1], float(solution[-1])


def least_squares_line_of_blocks(blocks: Iterable[Dataset]) -> tuple[np.ndarray, float]:
    """least_squares_line of a train set that comes a block of rows at a time. One block:
    exactly least_squares_line. More: the normal equations, X^T X and X^T y summed block by
    block in float64 and solved by lstsq, so memory holds a block, not the design matrix."""
    blocks = iter(blocks)
    first = next(blocks)
    second = next(blocks, None)
    if second is None:
        return least_squares_line(first)
    columns = first.x.shape[1] + 1
    gram, moment = np.zeros((columns, columns)), np.zeros(columns)  # X^T X, X^T y
    for block in itertools.chain([first, second], blocks):
        design = _design(block)  # (n, k + 1)
        gram += design.T @ design
        moment += design.T @ block.y.astype(np.float64)
    solution, *_ = np.linalg.lstsq(gram, moment, rcond=None)
    return solution[:-1], float(solution[-1])


def _design(data: Dataset) -> np.ndarray:
    """(n, k + 1) float64: the features and a column of ones."""
    design = np.empty((len(data), data.x.shape[1] + 1))  # filled in place: one pass, not three
    design[:, :-1] = data.x
    design[:, -1] = 1.0
    return design


def evaluate_blocks(
    model: nn.Module,
    train: Iterable[Dataset],
    test: Iterable[Dataset],
    truth: Truth | None,
    write: Callable[[Predictions], object],
    loss: str,
) -> Evaluation:
    """The metrics of reports/metrics.json, with the train and test sets coming a block of rows
    at a time: each block's predictions go to `write` as they are made, and their errors are
    summed (ErrorSums): memory holds a block of either set, and the metrics do not depend on
    the block size beyond float rounding (one test block: the whole set's sums). `loss`
    (train.loss) is the one train_loss_gap measures, where the train set is one block."""
    from linreg.core.model import line_coefficients, model_features  # torch: only here

    line, features = line_coefficients(model), model_features(model)
    train = iter(train)
    first, second = next(train), next(train, None)
    more = [] if second is None else [second]
    lstsq_weights, lstsq_bias = least_squares_line_of_blocks(itertools.chain([first], more, train))
    sums, reference_sums = ErrorSums(), ErrorSums()
    for block in test:
        require_same_columns(first, block, "the train set", "the test set")
        _check_features(features, block)
        y_pred = predict(model, block.x)
        if not np.isfinite(y_pred).all():
            shown = f" (weights {_numbers(line[0])}, bias {line[1]:g})" if line else ""
            raise PipelineError(
                f"the model's predictions overflow {model_precision(model)}{shown}; "
                "no metrics written: retrain it"
            )
        write(Predictions(block, y_pred))
        sums += ErrorSums.of(block.y, y_pred)
        reference_sums += ErrorSums.of(block.y, line_values(lstsq_weights, lstsq_bias, block.x))
    errors = sums.errors()
    metrics = Metrics(
        test_mae=errors.mae,
        test_mse=errors.mse,
        test_rmse=errors.rmse,
        test_r2=errors.r2,
        lstsq_test_mae=reference_sums.errors().mae,
        train_loss_gap=_train_loss_gap(model, loss, first) if second is None else None,
        **(_line_metrics(*line, truth) if line else dict.fromkeys(LINE_METRICS)),
    )
    coefficients = Coefficients(
        terms=(*first.features, "bias"),
        trained=np.append(*line) if line else None,
        least_squares=np.append(lstsq_weights, lstsq_bias),
    )
    return Evaluation(metrics, coefficients)


def _train_loss_gap(model: nn.Module, loss: str, train: Dataset) -> float | None:
    """train_loss_gap on a train set held in memory, in the units the optimizer saw."""
    from linreg.core.model import Standardized

    scale = float(model.scaling.y_std) if isinstance(model, Standardized) else 1.0
    y = train.y.astype(np.float64) / scale
    trained = predict(model, train.x).astype(np.float64) / scale
    return loss_gap(loss, _design(train), y, trained)


def _line_metrics(weights: np.ndarray, bias: float, truth: Truth | None) -> dict[str, Any]:
    """The metrics of a line: its weight (one feature) and bias, and their distance to the true
    line where it is known."""
    return {
        "weight": float(weights[0]) if len(weights) == 1 else None,
        "bias": bias,
        "weight_error": _largest_error(weights, truth.weights) if truth else None,
        "bias_error": abs(bias - truth.bias) if truth else None,
    }


def _check_features(features: int, test: Dataset) -> None:
    if features != test.x.shape[1]:
        raise PipelineError(
            f"the model takes {features} feature(s), the data has "
            f"{test.x.shape[1]} ({shorten(', '.join(test.features))}): retrain it on this data"
        )


def _largest_error(weights: np.ndarray, true_weights: tuple[float, ...]) -> float:
    if len(true_weights) != len(weights):
        raise PipelineError(
            f"the data was drawn with {len(true_weights)} weight(s), the model has "
            f"{len(weights)}: retrain it"
        )
    return max(abs(float(w) - t) for w, t in zip(weights, true_weights, strict=True))


def _numbers(values: np.ndarray) -> str:
    return ", ".join(f"{value:g}" for value in values[:5]) + (" ..." if len(values) > 5 else "")
