"""Load params.yaml into frozen, typed, validated models: the one place params are checked."""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from linreg.errors import PipelineError, not_utf8, shorten, shown

# Upper bounds of the keys that cost time or memory, each with the reason an error gives.
# Seeds: 32 bits, what every generator here takes (numpy's, torch's, with a rank added).
MAX_SEED = 2**32 - 1
# The history keeps a row per epoch and the train log writes it: a million is days of
# training at the lesson's size, not a typo'd extra zero's years.
MAX_EPOCHS = 1_000_000
# Points drawn per data set: past a million, a scatter plot takes minutes and gigabytes.
MAX_PLOT_POINTS = 1_000_000
_SEED = Field(ge=0, le=MAX_SEED, description="seeds are 32-bit, what every generator here takes")


class _Section(BaseModel):
    # strict: "10" is not an int and true is not a number; a typo'd key is an error, not ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class GenerateParams(_Section):
    weight: float
    bias: float
    start: float
    end: float
    step: float = Field(gt=0)
    noise_std: float = Field(ge=0)
    seed: int = _SEED

    @model_validator(mode="after")
    def _end_after_start(self) -> GenerateParams:
        if self.end <= self.start:
            raise ValueError(
                f"generate.end = {self.end!r}: must be greater than generate.start ({self.start!r})"
            )
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> GenerateParams:
        # Estimated before any work: a step typed one digit short must not start a job that
        # dies of memory an hour later (or takes the machine with it).
        span = self.span
        needed, available = span * BYTES_PER_ROW, _physical_memory()
        if not needed <= available:
            raise ValueError(
                f"generate.step = {self.step!r}: makes {_count(span)} rows, about "
                f"{_gib(needed)} in memory ({BYTES_PER_ROW} bytes a row); this machine has "
                f"{_gib(available)}: use a larger step or a shorter start..end range"
            )
        return self

    @model_validator(mode="after")
    def _fits_float32(self) -> GenerateParams:
        # The data is float32: a line that leaves its range would be written as inf or nan.
        reach = abs(self.weight) * max(abs(self.start), abs(self.end)) + abs(self.bias)
        reach += 10 * self.noise_std  # noise beyond ten standard deviations never happens
        if not reach <= FLOAT32_REACH:
            raise ValueError(
                f"generate: weight * x + bias + noise reaches {reach:.3g}, beyond float32's "
                f"range (about 3.4e38); use smaller weight, bias, start, end or noise_std"
            )
        return self

    @property
    def span(self) -> float:
        """(end - start) / step, the row count before rounding up; inf when it overflows."""
        return (self.end - self.start) / self.step

    @property
    def rows(self) -> int:
        """Row count of arange(start, end, step), computed as torch.arange does."""
        return math.ceil(self.span)


# Largest |y| the data may hold: float32's largest finite value is about 3.4e38.
FLOAT32_REACH = 1e38

# Peak memory of the hungriest stage per row of data, rounded up: bench/scale.py measures
# train at 10^7 rows ~700 MiB above torch's own ~350 MiB, about 73 bytes a row.
BYTES_PER_ROW = 128


def _physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gib(size: float) -> str:
    return f"{_count(size / 2**30, decimals=1)} GiB"


def _count(number: float, decimals: int = 0) -> str:
    """1,234,567 (or 1.2 with decimals); past 10^15, where digits stop meaning much, 1.23e+20."""
    return f"{number:,.{decimals}f}" if number < 1e15 else f"{number:.3g}"


class SplitParams(_Section):
    train_fraction: float = Field(gt=0, lt=1)
    shuffle: bool
    seed: int = _SEED

    def train_rows(self, rows: int) -> int:
        """How many of `rows` rows go to the train set (the lesson's int(0.8 * len(X)))."""
        return int(self.train_fraction * rows)


class TrainParams(_Section):
    model: Literal["parameters", "linear"]
    loss: Literal["l1", "mse", "huber"]
    optimizer: Literal["sgd", "adam"]
    lr: float = Field(gt=0)
    momentum: float = Field(ge=0, lt=1)
    epochs: int = Field(
        ge=1, le=MAX_EPOCHS, description="the history keeps a row per epoch, in memory and the log"
    )
    batch_size: int = Field(ge=0)
    seed: int = _SEED
    device: Literal["auto", "cpu", "cuda", "mps"]
    log_every: int = Field(ge=1)
    nproc: int = Field(ge=1)
    checkpoint_seconds: float = Field(ge=0)

    @model_validator(mode="after")
    def _a_core_per_rank(self) -> TrainParams:
        # More ranks than cores only slow each other down (and each holds the data): a
        # typo'd 1000 would fork until the machine refuses. torchrun ignores nproc.
        cores = os.cpu_count() or 1
        if self.nproc > cores:
            raise ValueError(
                f"train.nproc = {self.nproc}: more processes than this machine's {cores} "
                f"cores; use at most {cores}"
            )
        return self


class PlotParams(_Section):
    dpi: int = Field(ge=10, le=1000)
    max_points: int = Field(
        ge=10, le=MAX_PLOT_POINTS, description="matplotlib draws every point it is given"
    )
    seed: int = _SEED


class Params(_Section):
    generate: GenerateParams
    split: SplitParams
    train: TrainParams
    plot: PlotParams

    @model_validator(mode="after")
    def _split_leaves_both_sets(self) -> Params:
        rows = self.generate.rows
        train_rows = self.split.train_rows(rows)
        if not 1 <= train_rows < rows:
            raise ValueError(
                f"split.train_fraction = {self.split.train_fraction!r}: leaves {train_rows} train "
                f"and {rows - train_rows} test rows of {rows}; each set needs at least 1 row"
            )
        return self


class _Loader(yaml.SafeLoader):
    """YAML's safe loader that also reads 1e-3 as a float (YAML 1.2, as `dvc exp run -S` writes)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file; any problem is one PipelineError line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found (run from the project root)") from None
    except UnicodeDecodeError as error:
        raise not_utf8(path, error.object[error.start], error.start) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: builds no arbitrary objects
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise PipelineError(f"{path}: invalid YAML{line}: {error.problem}") from None
    except yaml.YAMLError as error:  # a YAML error without a position (a NUL byte, ...)
        raise PipelineError(f"{path}: invalid YAML: {shorten(str(error))}") from None
    return params_from_dict(data, source=str(path))


def parse_value(text: str) -> Any:
    """One value as params.yaml would read it: 0.1 and 1e-3 are floats, true a bool."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text  # what YAML cannot read is a string, and validation says if that is wrong


def with_overrides(params: Params, overrides: dict[str, Any], source: str) -> Params:
    """`params` with dotted keys (train.lr) set to new values, validated like the file."""
    data = params.model_dump()
    for key, value in overrides.items():
        *sections, name = key.split(".")
        if not sections:
            raise PipelineError(f"{source}: {key}: expected SECTION.KEY, e.g. train.lr")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise PipelineError(f"{source}: {key}: {section} is a value, not a section")
        node[name] = value
    return params_from_dict(data, source=source)


def params_from_dict(data: Any, source: str = "params.yaml") -> Params:
    """Validate already-parsed params; errors name the key, the value and what is allowed."""
    if not isinstance(data, dict):
        raise PipelineError(f"{source}: expected sections {_names(Params)}, got {shown(data)}")
    try:
        return Params.model_validate(data)
    except ValidationError as error:
        problems = [_describe(e) for e in error.errors()]
        # one line: the first problems, and how many more a fix will show next
        more = f"; and {len(problems) - 2} more" if len(problems) > 2 else ""
        raise PipelineError(f"{source}: {'; '.join(problems[:2])}{more}") from None


def _describe(error: Any) -> str:
    loc = tuple(shorten(str(part)) for part in error["loc"])
    key = ".".join(loc)
    kind = error["type"]
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "extra_forbidden":
        known = list(_section_model(loc[:-1]).model_fields)
        what = "section" if len(loc) == 1 else "key"
        return f"unknown {what} {key}: {_suggest(loc[-1], known)}allowed: {', '.join(known)}"
    if kind == "missing":
        return f"missing {'section' if len(loc) == 1 else 'key'} {key}"
    message = error["msg"][0].lower() + error["msg"][1:]
    reason = _bound_reason(loc) if kind in ("less_than_equal", "less_than") else None
    because = f" ({reason})" if reason else ""
    return f"{key} = {shown(error['input'])}: {message}{because}"


def _bound_reason(loc: tuple[str, ...]) -> str | None:
    """Why a key has its upper bound (its Field's description), for keys that have one."""
    try:
        return _section_model(loc[:-1]).model_fields[loc[-1]].description
    except (KeyError, AttributeError):
        return None


# Long names people type for our short keys, so that a typo of either finds the key.
_SYNONYMS = {
    "learning_rate": "lr",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "batch": "batch_size",
    "noise": "noise_std",
    "fraction": "train_fraction",
}


def _suggest(unknown: str, known: list[str]) -> str:
    """'did you mean ...? ' for a typo of a known name, else ''."""
    names = {name: name for name in known}
    names |= {long: short for long, short in _SYNONYMS.items() if short in names}
    close = difflib.get_close_matches(unknown, list(names), n=1, cutoff=0.6)
    return f"did you mean {names[close[0]]!r}? " if close else ""


def _section_model(loc: tuple[str, ...]) -> type[BaseModel]:
    model: type[BaseModel] = Params
    for part in loc:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model


def _names(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)
