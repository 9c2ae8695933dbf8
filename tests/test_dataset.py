"""generate and split: shapes, values, seeds and order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.project import synthetic_dataset
from linreg.core.dataset import Dataset, split_dataset
from linreg.core.errors import PipelineError
from linreg.core.params import with_overrides
from linreg.core.synthetic import generate_blocks
from linreg.io import tables
from linreg.io.datasets import read_blocks, read_split, split_file, write_blocks, write_dataset
from linreg.runtime.limits import require_memory


def test_generate_is_the_lessons_line(params):
    data = synthetic_dataset(params.generate)
    assert data.x.dtype == data.y.dtype == np.float32
    assert data.x.shape == (50, 1)
    assert data.y.shape == (50,)
    assert data.features == ("x",)
    assert data.target == "y"
    x = data.x[:, 0]
    assert x[0] == 0.0
    np.testing.assert_allclose(x, np.arange(50) * 0.02, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(data.y, np.float32(0.7) * x + np.float32(0.3))


def test_generate_grid_is_torch_arange_within_one_float32_step(params):
    expected = torch.arange(0.0, 1.0, 0.02).numpy()
    actual = synthetic_dataset(params.generate).x[:, 0]
    assert len(actual) == len(expected)
    assert np.all(np.abs(actual.view(np.int32) - expected.view(np.int32)) <= 1)  # at most 1 ulp


def test_rows_beyond_this_machines_memory_are_refused_before_any_work(params):
    """A billion rows of (x, y) validate anywhere; generate refuses them on a 16 GiB machine."""
    billion = with_overrides(params, {"generate.step": 1e-9}, source="params.yaml").generate
    require_memory(billion, available=64 * 2**30)
    with pytest.raises(PipelineError) as error:
        require_memory(billion, available=16 * 2**30)
    assert str(error.value) == (
        "generate.step = 1e-09: makes 1,000,000,000 rows, about 59.6 GiB in memory (64 bytes "
        "a row); this machine has 16.0 GiB: use a larger step or a shorter start..end range"
    )


def test_row_count_follows_arange(params):
    generate = params.generate.model_copy(update={"start": -1.0, "end": 2.0, "step": 0.5})
    assert len(synthetic_dataset(generate)) == generate.rows == 6


def test_noise_is_seeded(params):
    noisy = params.generate.model_copy(update={"noise_std": 0.1})
    first, again = synthetic_dataset(noisy), synthetic_dataset(noisy)
    other = synthetic_dataset(noisy.model_copy(update={"seed": 7}))
    clean = synthetic_dataset(params.generate)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.array_equal(first.y, other.y)
    residual = first.y - clean.y
    assert 0.05 < residual.std() < 0.15


def test_split_is_in_order_by_default(params):
    data = synthetic_dataset(params.generate)
    train, test = split_dataset(data, params.split)
    assert (len(train), len(test)) == (40, 10)
    np.testing.assert_array_equal(np.concatenate([train.x, test.x]), data.x)
    np.testing.assert_array_equal(np.concatenate([train.y, test.y]), data.y)


def test_shuffled_split_is_a_seeded_permutation(params):
    data = Dataset(
        np.arange(50, dtype=np.float32).reshape(-1, 1), np.arange(50, dtype=np.float32) * 2
    )
    shuffle = params.split.model_copy(update={"shuffle": True})
    train, test = split_dataset(data, shuffle)
    again, _ = split_dataset(data, shuffle)
    other, _ = split_dataset(data, shuffle.model_copy(update={"seed": 1}))
    assert (len(train), len(test)) == (40, 10)
    np.testing.assert_array_equal(train.x, again.x)
    assert not np.array_equal(train.x, other.x)
    assert not np.array_equal(train.x, data.x[:40])
    np.testing.assert_array_equal(np.sort(np.concatenate([train.x, test.x]), axis=0), data.x)
    np.testing.assert_array_equal(train.y, train.x[:, 0] * 2)  # rows stay whole


def test_train_and_test_sets_must_share_their_columns(tmp_path):
    data = Dataset(np.ones((3, 2), np.float32), np.arange(3, dtype=np.float32), ("a", "b"), "t")
    write_dataset(tmp_path / "train.csv", data)
    write_dataset(tmp_path / "test.csv", Dataset(data.x, data.y, ("a", "c"), "t"))
    train, _ = read_split(tmp_path / "train.csv", tmp_path / "train.csv")
    assert (train.features, train.target) == (("a", "b"), "t")
    with pytest.raises(PipelineError, match=r"test\.csv: columns a, c, t differ from .*a, b, t"):
        read_split(tmp_path / "train.csv", tmp_path / "test.csv")


def test_a_split_that_leaves_a_set_empty_is_refused(params):
    two = Dataset(np.zeros((2, 1), np.float32), np.zeros(2, np.float32))
    with pytest.raises(PipelineError, match=r"split\.train_fraction = 0\.4: leaves 0 train"):
        split_dataset(two, params.split.model_copy(update={"train_fraction": 0.4}))


@pytest.mark.parametrize("weight", [0.7, [1.5, -2.0, 0.5]], ids=["lesson", "three features"])
def test_blocks_do_not_depend_on_their_size_and_write_the_whole(params, tmp_path, weight):
    noisy = params.generate.model_copy(update={"weight": weight, "noise_std": 0.1})
    whole = synthetic_dataset(noisy)
    for size in (7, 1000):
        blocks = list(generate_blocks(noisy, rows=size))
        assert len(blocks) == -(-len(whole) // size)
        assert np.concatenate([b.x for b in blocks]).tobytes() == whole.x.tobytes()
        assert np.concatenate([b.y for b in blocks]).tobytes() == whole.y.tobytes()
    write_dataset(tmp_path / "whole.csv", whole)
    write_blocks(tmp_path / "blocks.csv", generate_blocks(noisy, rows=7), noisy.rows)
    assert (tmp_path / "blocks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def small_blocks(monkeypatch) -> None:
    """A few rows parsed at a time, each batch a block of its own: many blocks."""
    monkeypatch.setattr(tables, "PARSE_BYTES", 64)
    monkeypatch.setattr(tables, "BLOCK_ROWS", 1)


@pytest.mark.parametrize("shuffle", [False, True])
def test_split_file_writes_what_split_dataset_makes(params, tmp_path, monkeypatch, shuffle):
    small_blocks(monkeypatch)
    data = synthetic_dataset(params.generate.model_copy(update={"noise_std": 0.1}))
    write_dataset(tmp_path / "raw.csv", data)
    split = params.split.model_copy(update={"shuffle": shuffle})
    blocks = list(read_blocks(tmp_path / "raw.csv"))
    assert len(blocks) > 5
    assert np.concatenate([b.y for b in blocks]).tobytes() == data.y.tobytes()

    split_file(tmp_path / "raw.csv", tmp_path / "train.csv", tmp_path / "test.csv", split)

    train, test = split_dataset(data, split)
    write_dataset(tmp_path / "expected_train.csv", train)
    write_dataset(tmp_path / "expected_test.csv", test)
    for name in ("train", "test"):
        written = (tmp_path / f"{name}.csv").read_bytes()
        assert written == (tmp_path / f"expected_{name}.csv").read_bytes()


def test_a_bad_row_in_a_late_block_names_its_line_and_writes_nothing(params, tmp_path, monkeypatch):
    small_blocks(monkeypatch)
    lines = [f"{i / 50},{i / 100}" for i in range(50)]
    lines[44] = "0.88,inf"
    (tmp_path / "raw.csv").write_text("x,y\n" + "\n".join(lines) + "\n")
    with pytest.raises(PipelineError, match=r"raw\.csv: line 46, column y: inf is not a finite"):
        split_file(
            tmp_path / "raw.csv", tmp_path / "train.csv", tmp_path / "test.csv", params.split
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["raw.csv"]
