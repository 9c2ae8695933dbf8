"""The files of the pipeline's records besides the data (linreg.core.records), each format
written once: data/truth.json, reports/train_log.csv, reports/predictions.csv and
reports/coefficients.csv. numpy only:
the plot stage and the experiment tooling read them without torch."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from linreg.core.conventions import PREDICTION_SUFFIX
from linreg.core.dataset import Dataset, as_features
from linreg.core.errors import PipelineError
from linreg.core.records import Coefficients, Predictions, TrainLog, Truth
from linreg.io.files import read_json, write_bytes_atomic, write_json
from linreg.io.tables import csv_blocks, csv_writer, read_csv, write_csv

_TRUTH_KEYS = tuple(field.name for field in fields(Truth))
TRAIN_LOG_COLUMNS = tuple(field.name for field in fields(TrainLog))


def write_truth(
    path: str | Path,
    truth: Truth | None,
    rows_dropped: int | None = None,
    precision: type[np.floating] = np.float32,
) -> None:
    """data/truth.json: the true weight and bias, or nulls when they are not known (a CSV
    source, which also says how many rows generate.missing: drop left out); and the precision
    of the data's numbers when it is not float32 (a CSV source's, kept as written)."""
    data: dict[str, object] = (
        {"weight": truth.weight, "bias": truth.bias} if truth else dict.fromkeys(_TRUTH_KEYS)
    )
    if rows_dropped is not None:
        data[_DROPPED] = rows_dropped
    if precision != np.float32:
        data[_PRECISION] = np.dtype(precision).name
    write_json(path, data)


_DROPPED, _PRECISION = "rows_dropped", "precision"
_PRECISIONS: dict[str, type[np.floating]] = {"float32": np.float32, "float64": np.float64}


def read_truth(path: str | Path) -> Truth | None:
    data = _truth_record(path)
    if data["weight"] is None and data["bias"] is None:
        return None
    return Truth(data["weight"], data["bias"])


def read_precision(path: str | Path) -> type[np.floating]:
    """The precision of the data's numbers that data/truth.json records (write_truth)."""
    return _PRECISIONS[_truth_record(path).get(_PRECISION, "float32")]


def _truth_record(path: str | Path) -> dict[str, Any]:
    data = read_json(path, "run the generate stage first")
    optional = (_DROPPED, _PRECISION)
    if (
        not isinstance(data, dict)
        or sorted(key for key in data if key not in optional) != sorted(_TRUTH_KEYS)
        or data.get(_PRECISION, "float32") not in _PRECISIONS
    ):
        raise PipelineError(
            f"{path}: expected an object with keys {', '.join(_TRUTH_KEYS)} (and optionally "
            f"{', '.join(optional)}: one of {', '.join(_PRECISIONS)})"
        )
    return data


def read_test_mae(path: str | Path) -> float:
    """The test MAE that reports/metrics.json records (evaluate writes it)."""
    metrics = read_json(path, "run the evaluate stage first")
    mae = metrics.get("test_mae") if isinstance(metrics, dict) else None
    if not isinstance(mae, float):
        raise PipelineError(f"{path}: expected an object with a number test_mae; rerun evaluate")
    return mae


def write_train_log(path: str | Path, log: TrainLog) -> None:
    write_csv(path, {name: getattr(log, name) for name in TRAIN_LOG_COLUMNS})


def read_train_log(path: str | Path) -> TrainLog:
    return TrainLog(**read_csv(path, TRAIN_LOG_COLUMNS))


COEFFICIENT_COLUMNS = ("term", "trained", "least_squares")


def write_coefficients(path: str | Path, coefficients: Coefficients) -> None:
    """One row a term: its name, the trained value (empty where the model is not a line) and
    the least-squares one, floats in the shortest text that reads back exactly."""
    trained = coefficients.trained
    text = io.StringIO()
    rows = csv.writer(text, lineterminator="\n")
    rows.writerow(COEFFICIENT_COLUMNS)
    for i, term in enumerate(coefficients.terms):
        value = "" if trained is None else repr(float(trained[i]))
        rows.writerow([term, value, repr(float(coefficients.least_squares[i]))])
    write_bytes_atomic(path, text.getvalue().encode())


def read_coefficients(path: str | Path) -> dict[str, tuple[float | None, float]]:
    """reports/coefficients.csv by term: (trained or None, least squares)."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows or tuple(rows[0]) != COEFFICIENT_COLUMNS:
        raise PipelineError(f"{path}: expected the columns {', '.join(COEFFICIENT_COLUMNS)}")
    return {
        term: (float(trained) if trained else None, float(lsq)) for term, trained, lsq in rows[1:]
    }


@contextmanager
def predictions_writer(path: str | Path) -> Iterator[Callable[[Predictions], None]]:
    """A function that appends predictions, a block of rows at a time, to a new predictions CSV
    at `path`, written atomically when the block ends (inside all_or_none: at its end)."""
    with csv_writer(path, None, None) as write_rows:
        yield lambda predictions: write_rows(_prediction_columns(predictions))


def _prediction_columns(predictions: Predictions) -> dict[str, np.ndarray]:
    test = predictions.data
    columns = {name: test.x[:, i] for i, name in enumerate(test.features)}
    return columns | {test.target: test.y, test.target + PREDICTION_SUFFIX: predictions.y_pred}


# The columns `dvc plots` charts (dvc.yaml's plots), the same whatever the data's columns are.
PREDICTED_VS_ACTUAL_COLUMNS = ("actual", "predicted")


def write_predicted_vs_actual(path: str | Path, predictions: Predictions) -> None:
    """Each test row's target and prediction, as the interactive chart of `dvc plots show`
    draws them (the rows the predictions picture draws: at most plot.max_points)."""
    actual, predicted = PREDICTED_VS_ACTUAL_COLUMNS
    write_csv(path, {actual: predictions.y, predicted: predictions.y_pred})


def read_predictions(path: str | Path) -> Predictions:
    return _as_predictions(path, read_csv(path))


def read_prediction_blocks(path: str | Path, rows: int | None = None) -> Iterator[Predictions]:
    """read_predictions a block of rows at a time (tables.csv_blocks; `rows`: as counted)."""
    return (_as_predictions(path, columns) for columns in csv_blocks(path, rows=rows))


def _as_predictions(path: str | Path, columns: dict[str, np.ndarray]) -> Predictions:
    names = list(columns)
    if len(names) < 3 or names[-1] != names[-2] + PREDICTION_SUFFIX:
        raise PipelineError(
            f"{path}: expected the feature columns, the target and its predictions (named "
            f"after it, with {PREDICTION_SUFFIX}), last; found {', '.join(names)}"
        )
    *features, target, predicted = names
    x = as_features([columns[name] for name in features])
    return Predictions(Dataset(x, columns[target], tuple(features), target), columns[predicted])
