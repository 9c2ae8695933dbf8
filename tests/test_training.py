"""The training loop: the lesson's numbers, the closed-form fit, mini-batches and devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes

from harness.project import run_module, synthetic_dataset
from linreg.core import batches, fused
from linreg.core.dataset import Dataset, split_dataset
from linreg.core.errors import PipelineError
from linreg.core.evaluation import least_squares_line
from linreg.core.model import build_model
from linreg.core.placement import resolve_device
from linreg.core.training import fit

from .helpers import (
    LESSON_BIAS,
    LESSON_LINEAR_BIAS,
    LESSON_LINEAR_EPOCH0,
    LESSON_LINEAR_WEIGHT,
    LESSON_LOSS_TOLERANCE,
    LESSON_TEST_LOSS,
    LESSON_TRAIN_LOSS,
    LESSON_WEIGHT,
)


@pytest.fixture
def lesson_data(params) -> tuple[Dataset, Dataset]:
    return split_dataset(synthetic_dataset(params.generate), params.split)


def test_defaults_reproduce_the_lessons_losses_and_weights(params, lesson_data):
    result = fit(params.train, *lesson_data)
    history = result.history
    np.testing.assert_array_equal(history.epoch, np.arange(100))
    np.testing.assert_allclose(
        history.train_loss[::10], LESSON_TRAIN_LOSS, rtol=0, atol=LESSON_LOSS_TOLERANCE
    )
    np.testing.assert_allclose(
        history.test_loss[::10], LESSON_TEST_LOSS, rtol=0, atol=LESSON_LOSS_TOLERANCE
    )
    (weight,), bias = result.model.coefficients()
    assert round(weight, 4) == LESSON_WEIGHT
    assert round(bias, 4) == LESSON_BIAS


def test_linear_model_reproduces_the_lessons_second_model(params, lesson_data):
    linear = params.train.model_copy(update={"model": "linear", "epochs": 1000})
    result = fit(linear, *lesson_data)
    first = (result.history.train_loss[0], result.history.test_loss[0])
    np.testing.assert_allclose(first, LESSON_LINEAR_EPOCH0, rtol=0, atol=LESSON_LOSS_TOLERANCE)
    (weight,), bias = result.model.coefficients()
    assert round(weight, 4) == LESSON_LINEAR_WEIGHT
    assert round(bias, 4) == LESSON_LINEAR_BIAS


@pytest.mark.parametrize(
    ("loss", "optimizer", "lr", "epochs"),
    [("mse", "sgd", 0.5, 2000), ("huber", "sgd", 1.0, 2000), ("l1", "adam", 0.01, 3000)],
)
def test_fit_recovers_the_closed_form_line(params, loss, optimizer, lr, epochs):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 200).astype(np.float32)
    y = (0.7 * x + 0.3 + rng.normal(0, 0.01, 200)).astype(np.float32)
    train = Dataset(x.reshape(-1, 1), y)
    settings = params.train.model_copy(
        update={"loss": loss, "optimizer": optimizer, "lr": lr, "epochs": epochs}
    )
    (weight,), bias = fit(settings, train, train).model.coefficients()
    (lstsq_weight,), lstsq_bias = least_squares_line(train)
    # least squares is the optimum of mse; l1 and huber land within the noise of it
    tolerance = 1e-4 if loss == "mse" else 5e-3
    assert weight == pytest.approx(lstsq_weight, abs=tolerance)
    assert bias == pytest.approx(lstsq_bias, abs=tolerance)
    assert (weight, bias) == pytest.approx((0.7, 0.3), abs=0.01)


@pytest.mark.parametrize(("batch_size", "standardize"), [(0, False), (8, True)])
def test_float64_trains_in_float64_from_the_lessons_start(
    params, lesson_data, batch_size, standardize
):
    """train.dtype: float64 makes the model, its scaling and the losses float64; it starts
    from the same drawn numbers, so it follows the float32 run to float32's rounding."""
    settings = params.train.model_copy(
        update={"epochs": 20, "batch_size": batch_size, "standardize": standardize}
    )
    single = fit(settings, *lesson_data)
    double = fit(settings.model_copy(update={"dtype": "float64"}), *lesson_data)
    assert {tensor.dtype for tensor in double.model.state_dict().values()} == {torch.float64}
    assert double.history.train_loss.dtype == double.history.test_loss.dtype == np.float64
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(
            getattr(double.history, name), getattr(single.history, name), rtol=1e-5, atol=1e-6
        )


def test_float64_reaches_the_least_squares_line_where_float32_cannot(params):
    """MSE with SGD converges to the float64 least-squares fit to 1e-12 in float64; float32's
    rounding keeps it farther off than 1e-9."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (200, 1))
    y = 0.7 * x[:, 0] + 0.3 + rng.normal(0, 0.01, 200)
    train = Dataset(x, y)
    design = np.column_stack([x, np.ones(len(x))])
    reference = np.linalg.lstsq(design, y, rcond=None)[0]  # float64: (weight, bias)
    settings = params.train.model_copy(update={"loss": "mse", "lr": 0.5, "epochs": 400})
    distances = {}
    for dtype in ("float32", "float64"):
        (weight,), bias = fit(
            settings.model_copy(update={"dtype": dtype}), train, train
        ).model.coefficients()
        distances[dtype] = np.abs(np.array([weight, bias]) - reference).max()
    assert distances["float64"] < 1e-12 < 1e-9 < distances["float32"]


def test_minibatches_are_seeded_and_learn(params, lesson_data):
    settings = params.train.model_copy(update={"batch_size": 8, "epochs": 50, "momentum": 0.9})
    first, again = fit(settings, *lesson_data), fit(settings, *lesson_data)
    other = fit(settings.model_copy(update={"seed": 1}), *lesson_data)
    np.testing.assert_array_equal(first.history.train_loss, again.history.train_loss)
    assert not np.array_equal(first.history.train_loss, other.history.train_loss)
    assert first.history.test_loss[-1] < 0.05 < first.history.test_loss[0]


def test_minibatch_of_the_whole_set_equals_full_batch(params, lesson_data):
    full = fit(params.train.model_copy(update={"epochs": 20}), *lesson_data)
    one_batch = fit(params.train.model_copy(update={"epochs": 20, "batch_size": 40}), *lesson_data)
    # same rows in another order: the mean loss and its gradient agree to rounding
    np.testing.assert_allclose(one_batch.history.train_loss, full.history.train_loss, rtol=1e-5)


def test_minibatches_match_the_textbook_loop_bit_for_bit(params, lesson_data, monkeypatch):
    """Our epoch (int32 indices, blocks gathered whole, contiguous slices) against the plain
    way: per epoch, a generator seeded by (seed, epoch, rank), an int64 order of the blocks and
    of the rows within a full block and the short one, and a gather of x and y per batch."""
    train, test = lesson_data
    settings = params.train.model_copy(update={"batch_size": 7, "epochs": 5, "momentum": 0.9})
    monkeypatch.setattr(batches, "SHUFFLE_ROWS", 15)  # blocks of 14 rows (2 batches): 14, 14, 12
    ours = fit(settings, train, test)

    torch.manual_seed(settings.seed)
    model = build_model(settings.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)
    loss_fn = torch.nn.L1Loss()
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y).unsqueeze(1)
    block = 14
    for epoch in range(settings.epochs):
        generator = torch.Generator().manual_seed(batches._seed_of((settings.seed, epoch, 0)))
        blocks = -(-len(x) // block)
        block_order = torch.randperm(blocks, generator=generator)
        within = {size: torch.randperm(size, generator=generator) for size in (14, 12)}
        for first in (int(b) * block for b in block_order):
            rows_of_block = within[min(block, len(x) - first)] + first
            for start in range(0, len(rows_of_block), settings.batch_size):
                rows = rows_of_block[start : start + settings.batch_size]
                loss = loss_fn(model(x[rows]), y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    for name, value in model.state_dict().items():
        assert torch.equal(ours.model.state_dict()[name], value), name


def test_model_comes_back_on_the_cpu(params, lesson_data):
    result = fit(params.train.model_copy(update={"epochs": 2}), *lesson_data)
    assert all(p.device.type == "cpu" for p in result.model.parameters())


def test_auto_device_prefers_cuda_then_mps_then_cpu():
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else "mps"
        if torch.backends.mps.is_available()
        else "cpu"
    )
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_device_fails_fast_naming_what_is_available():
    with pytest.raises(
        PipelineError, match=r"train.device = 'cuda': not available .*available: cpu"
    ):
        resolve_device("cuda")


@pytest.mark.parametrize(("loss", "batch_size"), [("l1", 0), ("mse", 0), ("huber", 0), ("l1", 16)])
def test_steps_in_chunks_equal_steps_at_once_to_rounding(
    params, lesson_data, monkeypatch, loss, batch_size
):
    settings = params.train.model_copy(
        update={"loss": loss, "batch_size": batch_size, "epochs": 30}
    )
    at_once = fit(settings, *lesson_data)
    monkeypatch.setattr(batches, "CHUNK_ROWS", 7)  # 40 train rows: 6 chunks, the last short
    in_chunks = fit(settings, *lesson_data)

    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(
            getattr(in_chunks.history, name), getattr(at_once.history, name), rtol=1e-6
        )
    for name, value in at_once.model.state_dict().items():
        torch.testing.assert_close(in_chunks.model.state_dict()[name], value, rtol=1e-6, atol=0)


@pytest.mark.parametrize("passes", ["autograd", "fused"])
def test_two_ranks_in_chunks_learn_as_one_process_at_once(params, lesson_data, tmp_path, passes):
    one = fit(params.train.model_copy(update={"epochs": 30}), *lesson_data)
    out = tmp_path / "two.npy"
    run_module("tests.programs.chunked_ranks", str(out), *[passes] * (passes == "fused"))
    np.testing.assert_allclose(np.load(out), one.history.train_loss, rtol=1e-5)


@pytest.mark.parametrize(
    ("model", "loss", "features", "batch_size", "optimizer", "chunk_rows"),
    [
        *[("parameters", loss, 1, 0, "sgd", 7) for loss in fused.FUSED_LOSSES],
        ("linear", "huber", 3, 0, "adam", 7),
        ("parameters", "mse", 3, 16, "sgd", 7),
        ("linear", "l1", 1, 0, "lbfgs", 7),
        ("parameters", "l1", 1, 8, "sgd", 64),  # the test set's 20 rows outgrow a batch's 8
    ],
)
def test_the_fused_pass_trains_as_autograd_does(
    params, monkeypatch, model, loss, features, batch_size, optimizer, chunk_rows
):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, features)).astype(np.float32)
    y = (x @ rng.normal(size=features) + 0.5 + 0.1 * rng.normal(size=60)).astype(np.float32)
    names = tuple(f"x{i}" for i in range(features))
    data = Dataset(x, y, names, "y")
    train, test = data.rows(slice(0, 40)), data.rows(slice(40, 60))
    update = {"model": model, "loss": loss, "batch_size": batch_size, "optimizer": optimizer}
    settings = params.train.model_copy(update={**update, "epochs": 30, "lr": 0.05})
    monkeypatch.setattr(fused, "FUSED_MIN_ROWS", 1 << 30)  # autograd, whatever the size
    by_autograd = fit(settings, train, test)
    monkeypatch.setattr(fused, "FUSED_MIN_ROWS", 0)  # every update fused
    monkeypatch.setattr(batches, "CHUNK_ROWS", chunk_rows)  # 7: 40 train rows in 6 chunks
    by_pass = fit(settings, train, test)

    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(
            getattr(by_pass.history, name), getattr(by_autograd.history, name), rtol=1e-5
        )
    for name, value in by_autograd.model.state_dict().items():
        torch.testing.assert_close(by_pass.model.state_dict()[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rows", ["as published", "sorted by the target"])
def test_batches_from_blocks_learn_as_a_full_permutation_does(params, monkeypatch, rows):
    """On a real table (scikit-learn's diabetes, 442 rows), batches of 16 drawn from blocks of
    64 rows end within 1 % of the loss that batches of a full permutation reach (blocks larger
    than the table), even with the rows sorted, the order blocks serve worst."""
    x, y = load_diabetes(return_X_y=True)
    order = np.argsort(y, kind="stable") if rows == "sorted by the target" else np.arange(len(y))
    names = tuple(f"x{i}" for i in range(x.shape[1]))
    table = Dataset(x[order].astype(np.float32), y[order].astype(np.float32), names, "y")
    update = {"batch_size": 16, "epochs": 200, "standardize": True, "loss": "mse"}
    settings = params.train.model_copy(update=update)
    ends = {}
    for block_rows in (64, len(table)):
        monkeypatch.setattr(batches, "SHUFFLE_ROWS", block_rows)
        ends[block_rows] = fit(settings, table, table).history
    blocks, permutation = ends.values()
    assert not np.array_equal(blocks.train_loss, permutation.train_loss)  # other batches
    assert blocks.test_loss[-1] == pytest.approx(permutation.test_loss[-1], rel=0.01)
