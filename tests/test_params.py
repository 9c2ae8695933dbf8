"""params.yaml validation: every rule fails before any work, naming key, value and what is allowed."""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from linreg.core.conventions import MODELS
from linreg.core.errors import PipelineError
from linreg.core.params import params_from_dict, parse_value, with_overrides
from linreg.core.training import LOSSES
from linreg.io.params import load_params
from linreg.runtime.cli import os_error_line

from .helpers import (
    ERROR_LINE_LIMIT,
    ROOT,
    delete,
    encoded,
    grown,
    link_to,
    make_fifo,
    make_folder,
    param,
    params_text,
)


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_defaults_are_the_lessons(params):
    assert params.generate.weight == 0.7
    assert params.generate.bias == 0.3
    assert params.generate.rows == 50
    assert params.split.train_rows(params.generate.rows) == 40
    assert (params.train.model, params.train.loss, params.train.optimizer) == (
        "parameters",
        "l1",
        "sgd",
    )
    assert (params.train.lr, params.train.epochs, params.train.seed) == (0.01, 100, 42)


def test_params_are_frozen(params):
    with pytest.raises(pydantic.ValidationError):
        params.train.lr = 0.5  # type: ignore[misc]


def one_of(names: Iterable[str]) -> str:
    """The allowed values as pydantic's line lists them: 'a', 'b' or 'c'."""
    quoted = [repr(name) for name in names]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("generate", "step", 0.0, "generate.step = 0.0: input should be greater than 0"),
        ("generate", "step", -0.02, "generate.step = -0.02: input should be greater than 0"),
        ("generate", "end", 0.0, "generate.end = 0.0: must be greater than generate.start (0.0)"),
        (
            "generate",
            "noise_std",
            -1.0,
            "generate.noise_std = -1.0: input should be greater than or equal to 0",
        ),
        ("split", "train_fraction", 1.0, "split.train_fraction = 1.0: input should be less than 1"),
        (
            "split",
            "train_fraction",
            0.0,
            "split.train_fraction = 0.0: input should be greater than 0",
        ),
        (
            "split",
            "train_fraction",
            0.01,
            "split.train_fraction = 0.01: leaves 0 train and 50 test rows",
        ),
        ("train", "epochs", 0, "train.epochs = 0: input should be greater than or equal to 1"),
        ("train", "epochs", "ten", "train.epochs = 'ten': input should be a valid integer"),
        ("train", "epochs", 2.5, "train.epochs = 2.5: input should be a valid integer"),
        ("train", "lr", 0.0, "train.lr = 0.0: input should be greater than 0"),
        ("train", "lr", [0.1], "train.lr = [0.1]: input should be a valid number"),
        ("train", "lr", float("nan"), "train.lr = nan: input should be a finite number"),
        ("train", "lr", float("inf"), "train.lr = inf: input should be a finite number"),
        ("train", "momentum", 1.0, "train.momentum = 1.0: input should be less than 1"),
        (
            "train",
            "batch_size",
            -1,
            "train.batch_size = -1: input should be greater than or equal to 0",
        ),
        ("train", "loss", "no loss", f"train.loss = 'no loss': input should be {one_of(LOSSES)}"),
        (
            "train",
            "model",
            "no model",
            f"train.model = 'no model': input should be {one_of(MODELS)}",
        ),
        (
            "train",
            "device",
            "tpu",
            "train.device = 'tpu': input should be 'auto', 'cpu', 'cuda' or 'mps'",
        ),
        ("split", "shuffle", "yes", "split.shuffle = 'yes': input should be a valid boolean"),
        ("plot", "dpi", 0, "plot.dpi = 0: input should be greater than or equal to 10"),
    ],
)
def test_bad_value_names_key_value_and_rule(raw, section, key, value, expected):
    raw[section][key] = value
    with pytest.raises(PipelineError) as error:
        params_from_dict(raw)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_lbfgs_takes_the_full_batch_only(raw):
    raw["train"] |= {"optimizer": "lbfgs", "batch_size": 8}
    with pytest.raises(PipelineError, match=r"train.batch_size = 8: train.optimizer = 'lbfgs' "
                       r"takes the full batch only \(train.batch_size: 0\)$"):  # fmt: skip
        params_from_dict(raw)
    raw["train"]["batch_size"] = 0
    assert params_from_dict(raw).train.optimizer == "lbfgs"


def test_unknown_key_suggests_the_closest(raw):
    raw["train"]["learnig_rate"] = 0.1
    with pytest.raises(
        PipelineError, match=r"unknown key train\.learnig_rate: did you mean 'lr'\?"
    ):
        params_from_dict(raw)


def test_missing_key_and_section(raw):
    broken = copy.deepcopy(raw)
    del broken["train"]["lr"]
    with pytest.raises(PipelineError, match=r"missing key train\.lr"):
        params_from_dict(broken)
    del raw["plot"]
    with pytest.raises(PipelineError, match="missing section plot"):
        params_from_dict(raw)


def test_missing_file(tmp_path: Path):
    with pytest.raises(PipelineError, match=r"params\.yaml: file not found"):
        load_params(tmp_path / "params.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text("generate:\n  weight: 0.7\n  bias: [0.3\nsplit: {}\n")
    with pytest.raises(PipelineError, match=r"params.yaml: invalid YAML at line \d+"):
        load_params(path)


@pytest.mark.parametrize(("text", "expected"), [("1e-3", 0.001), ("1.0e-3", 0.001), ("5E2", 500.0)])
def test_scientific_notation_reads_as_a_float(tmp_path: Path, text, expected):
    # `dvc exp run -S train.lr=1e-3` writes YAML 1.2 floats that plain PyYAML reads as strings
    source = (ROOT / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(source.replace("lr: 0.01 ", f"lr: {text} "))
    assert load_params(path).train.lr == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.1", 0.1), ("1e-3", 0.001), ("200", 200), ("true", True), ("linear", "linear")],
)
def test_a_value_reads_as_params_yaml_would(text, expected):
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_overrides_are_validated_like_the_file(params):
    changed = with_overrides(params, {"train.lr": 0.1, "plot.dpi": 50}, "GRID")
    assert (changed.train.lr, changed.plot.dpi) == (0.1, 50)
    assert changed.train.epochs == params.train.epochs  # the rest is untouched
    assert params.train.lr == 0.01


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.lr": -1.0}, "GRID: train.lr = -1.0: input should be greater than 0"),
        ({"train.lrr": 0.1}, "GRID: unknown key train.lrr: did you mean 'lr'?"),
        ({"lr": 0.1}, "GRID: lr: expected SECTION.KEY, e.g. train.lr"),
        ({"train.lr.x": 0.1}, "GRID: train.lr.x: lr is a value, not a section"),
        ({"split.train_fraction": 0.01}, "GRID: split.train_fraction = 0.01: leaves 0 train"),
    ],
)
def test_bad_overrides_are_one_line_errors(params, overrides, message):
    with pytest.raises(PipelineError) as error:
        with_overrides(params, overrides, "GRID")
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        (
            "train",
            "epochs",
            10**11,
            "train.epochs = 100000000000: input should be less than or equal to 1000000 (the history keeps a row per epoch, in memory and the log)",
        ),
        (
            "train",
            "seed",
            2**64,
            "train.seed = 18446744073709551616: input should be less than or equal to 4294967295 (seeds are 32-bit, what every generator here takes)",
        ),
        (
            "generate",
            "seed",
            2**32,
            "generate.seed = 4294967296: input should be less than or equal to 4294967295 (seeds are 32-bit, what every generator here takes)",
        ),
        (
            "plot",
            "max_points",
            10**9,
            "plot.max_points = 1000000000: input should be less than or equal to 1000000 (matplotlib draws every point it is given)",
        ),
    ],
)
def test_resource_keys_are_bounded_and_say_why(raw, section, key, value, expected):
    raw[section][key] = value
    with pytest.raises(PipelineError) as error:
        params_from_dict(raw)
    assert str(error.value) == f"params.yaml: {expected}"


def test_a_typod_section_is_named(raw):
    raw["plott"] = {"dpi": 300}
    with pytest.raises(PipelineError) as error:
        params_from_dict(raw)
    assert str(error.value) == (
        "params.yaml: unknown section plott: did you mean 'plot'? allowed: generate, split, train, plot"
    )


def test_a_long_list_of_problems_stays_one_short_line(raw):
    raw["train"] |= {"lr": "x" * 10_000, **{f"key{n}": n for n in range(50)}}
    with pytest.raises(PipelineError) as error:
        params_from_dict(raw)
    message = str(error.value)
    assert len(message) <= ERROR_LINE_LIMIT
    assert message.startswith(f"params.yaml: train.lr = '{'x' * 59}... (10,002 characters): ")
    assert message.endswith("; and 49 more")


def test_a_params_file_in_another_encoding_is_named_so(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_bytes((ROOT / "params.yaml").read_text().encode("utf-16"))
    with pytest.raises(
        PipelineError, match=r"params\.yaml: not UTF-8 text \(byte 0xff at offset 0\)"
    ):
        load_params(path)


# train.lr as ten million ones, in seven lines of YAML aliases (each list ten of the one before)
MILLION_ALIASES = "\n".join(
    [
        "  l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
        *(f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 6)),
        f"  lr: [{', '.join(['*l5'] * 10)}]",
    ]
)


# Nine levels of nine aliases: 387 million values from a file of under 3 KB.
ALIAS_BOMB = "\n".join(
    [
        "  l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]",
        *(f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)),
        f"  lr: [{', '.join(['*l8'] * 9)}]",
    ]
)


def line_of(start: str) -> int:
    """The number of params.yaml's first line that starts with `start`."""
    lines = (ROOT / "params.yaml").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(start))


LR_LINE, TRAIN_LINE = line_of("  lr:"), line_of("train:")


def broken(name: str, breaks: Callable[[Path], None], message: str) -> Any:
    return pytest.param(breaks, message, id=name)


# What a user does to params.yaml, and the one line it gets. Every stage validates the whole
# file with this code; tests/test_faults.py runs two of these through a stage's process.
BROKEN_FILES = [
    broken("params missing", delete("params.yaml"), r"params\.yaml: file not found"),
    broken(
        "yaml syntax",
        params_text("  dpi: 100", "  dpi: [100"),
        r"params\.yaml: invalid YAML at line \d+: ",
    ),
    broken("section missing", param("plot", None), r"params\.yaml: missing section plot"),
    broken("key missing", param("train.lr", None), r"params\.yaml: missing key train\.lr"),
    broken(
        "unknown key",
        param("train.learnig_rate", 0.1),
        r"params\.yaml: unknown key train\.learnig_rate: did you mean 'lr'\? allowed: model, ",
    ),
    broken(
        "epochs a string",
        param("train.epochs", "ten"),
        r"params\.yaml: train\.epochs = 'ten': input should be a valid integer",
    ),
    broken(
        "lr a list",
        param("train.lr", [0.1]),
        r"params\.yaml: train\.lr = \[0\.1\]: input should be a valid number",
    ),
    broken(
        "lr a bool",
        param("train.lr", True),
        r"params\.yaml: train\.lr = True: input should be a valid number",
    ),
    broken(
        "lr nan",
        params_text("lr: 0.01", "lr: .nan"),
        r"params\.yaml: train\.lr = nan: input should be a finite number",
    ),
    broken(
        "lr inf",
        params_text("lr: 0.01", "lr: .inf"),
        r"params\.yaml: train\.lr = inf: input should be a finite number",
    ),
    broken(
        "step negative",
        param("generate.step", -0.02),
        r"params\.yaml: generate\.step = -0\.02: input should be greater than 0",
    ),
    broken(
        "end below start",
        param("generate.end", -1.0),
        r"params\.yaml: generate\.end = -1\.0: must be greater than generate\.start \(0\.0\)",
    ),
    broken(
        "train_fraction 1",
        param("split.train_fraction", 1.0),
        r"params\.yaml: split\.train_fraction = 1\.0: input should be less than 1",
    ),
    broken(
        "a set left empty",
        param("generate.end", 0.02),  # one row: the train set would get none of it
        r"params\.yaml: split\.train_fraction = 0\.8: leaves 0 train and 1 test rows of 1; "
        r"each set needs at least 1 row",
    ),
    broken(
        "epochs 0",
        param("train.epochs", 0),
        r"params\.yaml: train\.epochs = 0: input should be greater than or equal to 1",
    ),
    broken(
        "batch_size -1",
        param("train.batch_size", -1),
        r"params\.yaml: train\.batch_size = -1: input should be greater than or equal to 0",
    ),
    broken(
        "step too small to count the rows",
        param("generate.step", 1e-300),
        r"params\.yaml: generate\.step = 1e-300: makes 1e\+300 rows, more than 9\.01e\+15 "
        r"\(2\^53, the most float64 counts exactly\); use a larger step",
    ),
    broken(
        "device unknown",
        param("train.device", "gpu"),
        r"params\.yaml: train\.device = 'gpu': input should be 'auto', 'cpu', 'cuda' or 'mps'",
    ),
    broken(
        "unknown section",
        param("plott", {"dpi": 300}),
        r"params\.yaml: unknown section plott: did you mean 'plot'\? allowed: generate, split, train, plot$",
    ),
    broken(
        "epochs beyond the bound",
        param("train.epochs", 100_000_000_000),
        r"params\.yaml: train\.epochs = 100000000000: input should be less than or equal to 1000000 \(the history",
    ),
    broken(
        "seed beyond 64 bits",
        param("train.seed", 2**64),
        r"params\.yaml: train\.seed = 18446744073709551616: input should be less than or equal to 4294967295 \(seeds are 32-bit",
    ),
    broken(
        "a value a million aliases long",
        params_text("  lr: 0.01", MILLION_ALIASES),
        r"params\.yaml: invalid YAML at line \d+: more than 100,000 values, aliases expanded$",
    ),
    broken(
        "an alias bomb of nine levels",
        params_text("  lr: 0.01", ALIAS_BOMB),
        r"params\.yaml: invalid YAML at line \d+: more than 100,000 values, aliases expanded$",
    ),
    broken(
        "an alias that holds itself",
        params_text("  lr: 0.01", "  lr: &self [*self]"),
        r"params\.yaml: invalid YAML at line \d+: an alias refers to itself$",
    ),
    broken(
        "a list nested 100,000 deep",
        params_text("  lr: 0.01", "  lr: " + "[" * 100_000),
        rf"params\.yaml: invalid YAML at line {LR_LINE}: nested more than 32 levels$",
    ),
    broken(
        "a map nested 50,000 deep",
        params_text("  lr: 0.01", "  lr: " + "{a: " * 50_000 + "1" + "}" * 50_000),
        rf"params\.yaml: invalid YAML at line {LR_LINE}: nested more than 32 levels$",
    ),
    broken(
        "a key twice",
        params_text("  lr: 0.01", "  lr: 0.5\n  lr: 0.01"),
        rf"params\.yaml: invalid YAML at line {LR_LINE + 1}: key train\.lr appears twice "
        rf"\(lines {LR_LINE} and {LR_LINE + 1}\); keep one$",
    ),
    broken(
        "a section twice",
        params_text("plot:", "train:\n  lr: 0.1\nplot:"),
        rf"params\.yaml: invalid YAML at line \d+: key train appears twice \(lines {TRAIN_LINE} and "
        r"\d+\); keep one$",
    ),
    broken(
        "lr beyond float32",
        param("train.lr", 1e39),
        r"params\.yaml: train\.lr = 1e\+39: input should be less than or equal to "
        r"3\.4028234663852886e\+38 \(float32's range, whatever train\.dtype\)$",
    ),
    broken(
        "params latin-1",
        encoded("params.yaml", "latin-1"),
        r"params\.yaml: not UTF-8 text \(byte 0xe9 at offset [\d,]+\); save it as UTF-8$",
    ),
    broken(
        "params utf-16",
        encoded("params.yaml", "utf-16"),
        r"params\.yaml: not UTF-8 text \(byte 0xff at offset 0\); save it as UTF-8$",
    ),
    broken(
        "params a folder",
        make_folder("params.yaml"),
        r"params\.yaml: a folder; expected a file \(run from the project root\)$",
    ),
    broken(
        "params a pipe",
        make_fifo("params.yaml"),
        r"params\.yaml: not a regular file \(a device, pipe or socket\); expected a file",
    ),
    broken(
        "params a link to /dev/zero",
        link_to("/dev/zero", "params.yaml"),
        r"params\.yaml: not a regular file \(a device, pipe or socket\); expected a file",
    ),
    broken(
        "params of 2 MB",
        grown("params.yaml", 2_000_000),
        r"params\.yaml: larger than the 1,048,576 bytes such a file can hold; is it the right file",
    ),
    broken(
        "not a mapping",
        params_text("generate:", "- generate:"),
        r"params\.yaml: (invalid YAML|expected sections)",
    ),
]


@pytest.mark.parametrize(("breaks", "message"), BROKEN_FILES)
def test_a_broken_params_file_is_one_line(tmp_path: Path, monkeypatch, breaks, message):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    breaks(tmp_path)
    monkeypatch.chdir(tmp_path)  # where a stage runs: the message names params.yaml so
    with pytest.raises((PipelineError, OSError)) as error:
        load_params("params.yaml")
    # an OSError is one line too: the entry point's (cli.run) words for it
    line = os_error_line(error.value) if isinstance(error.value, OSError) else str(error.value)
    assert line is not None
    assert re.match(f"{message}", line), line
    assert "\n" not in line
    assert len(line) <= ERROR_LINE_LIMIT, line
