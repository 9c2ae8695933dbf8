"""Metrics against hand-computed values, and the least-squares floor."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from linreg.core.dataset import Dataset
from linreg.core.errors import PipelineError
from linreg.core.evaluation import (
    METRIC_GOALS,
    ErrorSums,
    evaluate_blocks,
    least_squares_line,
    predict,
)
from linreg.core.model import ParameterModel
from linreg.core.records import Coefficients, Truth
from linreg.io.artifacts import predictions_writer, read_coefficients, write_coefficients

from .helpers import evaluate_whole


def test_regression_metrics_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    y_pred = np.array([1.5, 2.0, 2.0, 4.0], dtype=np.float32)
    errors = ErrorSums.of(y, y_pred).errors()
    assert errors.mae == pytest.approx((0.5 + 0 + 1 + 0) / 4)
    assert errors.mse == pytest.approx((0.25 + 0 + 1 + 0) / 4)
    assert errors.rmse == pytest.approx(math.sqrt(1.25 / 4))
    assert errors.r2 == pytest.approx(1 - 1.25 / 5.0)  # total sum of squares: 5


def test_r2_is_undefined_for_a_constant_target():
    constant = ErrorSums.of(np.ones(3, np.float32), np.zeros(3, np.float32))
    assert constant.errors().r2 is None


def test_least_squares_recovers_a_clean_line(line):
    (weight,), bias = least_squares_line(line)
    assert (weight, bias) == pytest.approx((2.0, -1.0), abs=1e-6)


def test_least_squares_matches_torch_lstsq():
    rng = np.random.default_rng(1)
    x = rng.normal(size=100).astype(np.float32)
    y = (3 * x + rng.normal(size=100)).astype(np.float32)
    design = torch.stack([torch.from_numpy(x), torch.ones(100)], dim=1).double()
    reference = torch.linalg.lstsq(design, torch.from_numpy(y).double().unsqueeze(1)).solution
    (weight,), bias = least_squares_line(Dataset(x.reshape(-1, 1), y))
    assert (weight, bias) == pytest.approx(reference.squeeze(1).tolist(), abs=1e-9)


def test_evaluate_reports_every_metric(line):
    model = ParameterModel()
    with torch.no_grad():
        model.weight.fill_(1.5)
        model.bias.fill_(-0.5)
    result, predictions = evaluate_whole(model, line, line, Truth(weight=2.0, bias=-1.0))
    metrics = result.as_json()
    assert list(metrics) == list(METRIC_GOALS)  # every metric has its goal, in the file's order
    y_pred = predictions.y_pred
    np.testing.assert_allclose(y_pred, 1.5 * line.x[:, 0] - 0.5, rtol=1e-6)
    assert predictions.data is line
    assert metrics["weight_error"] == pytest.approx(0.5)
    assert metrics["bias_error"] == pytest.approx(0.5)
    assert metrics["test_mae"] == pytest.approx(np.mean(np.abs(line.y - y_pred)), rel=1e-6)
    assert metrics["lstsq_test_mae"] < 1e-6


def test_predict_builds_no_graph(line):
    y_pred = predict(ParameterModel(), line.x)
    assert y_pred.dtype == np.float32
    assert y_pred.shape == line.y.shape


def blocks_of(data: Dataset, size: int) -> list[Dataset]:
    return [data.rows(slice(start, start + size)) for start in range(0, len(data), size)]


def test_evaluation_in_blocks_equals_it_at_once(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (300, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 + rng.normal(0, 0.1, 300)).astype(np.float32)
    train = Dataset(x[:200], y[:200], ("a", "b", "c"), "t")
    test = Dataset(x[200:], y[200:], ("a", "b", "c"), "t")
    model = ParameterModel(features=3)
    truth = Truth(weight=[1.0, -2.0, 0.5], bias=0.3)
    at_once, predictions = evaluate_whole(model, train, test, truth)

    with predictions_writer(tmp_path / "blocks.csv") as write:
        blocks = blocks_of(train, 7), blocks_of(test, 9)
        in_blocks = evaluate_blocks(model, *blocks, truth, write, "mse").metrics

    # the normal equations summed by block against numpy's lstsq: equal to rounding
    assert in_blocks.lstsq_test_mae == pytest.approx(at_once.lstsq_test_mae, rel=1e-9)
    # the error sums of blocks, combined, against numpy's over all rows: equal to rounding
    blockwise, whole = in_blocks.as_json(), at_once.as_json()
    assert blockwise.pop("train_loss_gap") is None  # computed where the train set is one block
    for name, value in whole.items():
        if name not in ("lstsq_test_mae", "train_loss_gap"):
            assert blockwise[name] == (value if value is None else pytest.approx(value, rel=1e-12))
    with predictions_writer(tmp_path / "at_once.csv") as write:
        write(predictions)  # one block
    assert (tmp_path / "blocks.csv").read_bytes() == (tmp_path / "at_once.csv").read_bytes()


def test_test_columns_must_be_the_train_columns():
    train = Dataset(np.ones((3, 1), np.float32), np.arange(3, dtype=np.float32))
    test = Dataset(train.x, train.y, ("z",), "y")
    with pytest.raises(
        PipelineError, match=r"the test set: columns z, y differ from the train set's x, y"
    ):
        evaluate_whole(ParameterModel(), train, test, None)


def test_error_sums_of_blocks_add_up_to_those_of_all_rows():
    """Uneven blocks, a far-off mean (where a naive sum of squares loses every digit)."""
    rng = np.random.default_rng(11)
    y = (1e4 + rng.normal(0, 0.01, 1000)).astype(np.float32)
    y_pred = (y + rng.normal(0, 0.001, 1000)).astype(np.float32)
    cuts = [0, 1, 2, 300, 301, 999, 1000]
    summed = sum(
        (ErrorSums.of(y[a:b], y_pred[a:b]) for a, b in itertools.pairwise(cuts)), ErrorSums()
    )
    whole = ErrorSums.of(y, y_pred).errors()
    assert asdict(summed.errors()) == pytest.approx(asdict(whole), rel=1e-9)
    assert ErrorSums() + ErrorSums.of(y, y_pred) == ErrorSums.of(y, y_pred)  # bit for bit


def test_coefficients_read_back_exactly_whatever_the_column_names(tmp_path):
    written = Coefficients(
        terms=('a "quoted", name', "x", "bias"),
        trained=np.array([0.1, -2.5e-300, 7.0]),
        least_squares=np.array([1 / 3, 2.0, -0.0]),
    )
    write_coefficients(tmp_path / "c.csv", written)
    read = read_coefficients(tmp_path / "c.csv")
    assert list(read) == list(written.terms)
    assert [t for t, _ in read.values()] == written.trained.tolist()
    assert [s for _, s in read.values()] == written.least_squares.tolist()
