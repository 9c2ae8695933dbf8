"""Checkpoints: exact round trip, stable bytes, and clear refusals."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from linreg.core.conventions import MODELS
from linreg.core.errors import PipelineError
from linreg.core.model import Scaling, Standardized, build_model
from linreg.io.checkpoint import load_model, save_checkpoint
from linreg.predict import main as predict_main


@pytest.mark.parametrize("standardized", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_round_trip_gives_the_same_model(tmp_path: Path, kind, dtype, standardized):
    """Either train.dtype, plain or standardised: the same class, precision and outputs."""
    torch.manual_seed(3)
    model: nn.Module = build_model(kind).to(dtype)
    if standardized:
        numpy_dtype = np.dtype(str(dtype).removeprefix("torch."))
        stats = np.array([0.25, 4.0], numpy_dtype)
        model = Standardized(model, Scaling(stats[:1], stats[1:], 0.5, 2.0))
    save_checkpoint(tmp_path / "model.pt", model)
    loaded = load_model(tmp_path / "model.pt")
    assert type(loaded) is type(model)
    assert not loaded.training
    assert {tensor.dtype for tensor in loaded.state_dict().values()} == {dtype}
    x = torch.linspace(0, 1, 5, dtype=dtype).unsqueeze(1)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))


def test_same_weights_same_bytes_whatever_the_file_name(tmp_path: Path):
    torch.manual_seed(3)
    model = build_model("parameters")
    save_checkpoint(tmp_path / "a.pt", model)
    save_checkpoint(tmp_path / "sub" / "b.pt", model)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "b.pt").read_bytes()


def test_checkpoint_holds_the_model_kind_and_cpu_tensors(tmp_path: Path):
    save_checkpoint(tmp_path / "m.pt", build_model("linear"))
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert state["model"] == "linear"
    assert sorted(state["state_dict"]) == ["linear.bias", "linear.weight"]


def test_garbage_is_named_as_such(tmp_path: Path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(PipelineError, match=r"model\.pt: not a readable checkpoint"):
        load_model(path)


def test_truncated_checkpoint_is_refused(tmp_path: Path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, build_model("parameters"))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(PipelineError, match=r"model\.pt: not a readable checkpoint"):
        load_model(path)


def test_weights_of_another_shape_are_refused(tmp_path: Path):
    path = tmp_path / "model.pt"
    buffer = io.BytesIO()
    torch.save(
        {"model": "parameters", "state_dict": {"weight": torch.ones(3), "bias": torch.ones(2)}},
        buffer,
    )
    path.write_bytes(buffer.getvalue())
    with pytest.raises(
        PipelineError, match=r"weights do not fit model 'parameters': bias has shape \(2,\)"
    ):
        load_model(path)


@pytest.mark.parametrize(
    ("weight", "problem"),
    [
        (torch.ones(1).to_sparse(), r"is a torch\.sparse_coo tensor, not a dense one"),
        (torch.ones(1, dtype=torch.complex64), r"is torch\.complex64, expected torch\.float32"),
        (torch.ones(1, dtype=torch.float16), r"is torch\.float16, expected torch\.float32"),
        (torch.tensor([float("inf")]), r"holds NaN or infinite values"),
        (torch.empty(1, device="meta"), r"is on the meta device, not the cpu"),
        (torch.nested.nested_tensor([torch.ones(1)]), r"is a nested tensor, not a dense one"),
        (
            torch.quantize_per_tensor(torch.ones(1), 0.1, 0, torch.qint8),
            r"is a quantized tensor",
        ),
        (torch.nn.Parameter(torch.ones(1)), r"is a Parameter, not a plain tensor"),
    ],
    ids=["sparse", "complex", "float16", "infinite", "meta", "nested", "quantized", "subclass"],
)
def test_only_dense_real_finite_weights_of_their_dtype_are_loaded(tmp_path, weight, problem):
    """The first tensor's precision, when train.dtype names it (float32 or float64), is what
    every tensor must have; any other precision is refused as not float32."""
    path = tmp_path / "model.pt"
    buffer = io.BytesIO()
    torch.save(
        {"model": "parameters", "state_dict": {"weight": weight, "bias": torch.ones(1)}}, buffer
    )
    path.write_bytes(buffer.getvalue())
    with pytest.raises(
        PipelineError, match=rf"weights do not fit model 'parameters': weight {problem}$"
    ):
        load_model(path)


@pytest.mark.parametrize("kind", ["no such model kind", ["parameters"], None])
def test_unknown_model_kind_is_refused(tmp_path: Path, kind):
    path = tmp_path / "model.pt"
    buffer = io.BytesIO()
    torch.save({"model": kind, "state_dict": {}}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(PipelineError, match="not a linreg checkpoint"):
        load_model(path)


def test_missing_checkpoint(tmp_path: Path):
    with pytest.raises(PipelineError, match=r"model\.pt: file not found"):
        load_model(tmp_path / "model.pt")


def test_predict_refuses_a_prediction_that_overflows(tmp_path):
    """As evaluate refuses the same model: inf is no prediction."""
    model = build_model("parameters")
    model.load_state_dict({"weight": torch.full((1,), 3e38), "bias": torch.zeros(1)})
    save_checkpoint(tmp_path / "model.pt", model)
    with pytest.raises(PipelineError, match=r"^the model's predictions overflow float32 for '10'"):
        predict_main(["--model", str(tmp_path / "model.pt"), "0.5", "10"])
