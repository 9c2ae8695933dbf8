"""Load params.yaml into frozen, typed, validated models: the one place params are checked."""

from __future__ import annotations

import difflib
import math
import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, cast

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from linreg.core.conventions import FLOAT32_MAX, MAX_FEATURES, MODELS, PREDICTION_SUFFIX
from linreg.core.errors import PipelineError, shorten, shown

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


_FEATURE_COUNT = Field(
    min_length=1, max_length=MAX_FEATURES, description="a weight, or a column name, per feature"
)


class _Source(_Section):
    """A generate section of one source kind: a key of the other kind is refused, naming the
    source it belongs to (_OTHER_KINDS_KEYS)."""

    @model_validator(mode="before")
    @classmethod
    def _no_other_kinds_keys(cls, data: Any) -> Any:
        keys, belong_to = _OTHER_KINDS_KEYS[cls]
        if isinstance(data, dict) and (present := [key for key in data if key in keys]):
            source = data.get("source", "synthetic")
            raise ValueError(
                f"generate.{present[0]}: not allowed with generate.source = {shown(source)}; "
                f"{', '.join(sorted(keys))} belong to {belong_to}"
            )
        return data


class SyntheticParams(_Source):
    """The lesson's data: y = weight . x + bias, plus seeded noise."""

    source: Literal["synthetic"] = "synthetic"
    weight: float | Annotated[list[float], _FEATURE_COUNT]  # a number: one feature, the lesson
    bias: float
    start: float
    end: float
    step: float = Field(gt=0)
    noise_std: float = Field(ge=0)
    seed: int = _SEED

    @model_validator(mode="after")
    def _end_after_start(self) -> SyntheticParams:
        if self.end <= self.start:
            raise ValueError(
                f"generate.end = {self.end!r}: must be greater than generate.start ({self.start!r})"
            )
        return self

    @model_validator(mode="after")
    def _rows_countable(self) -> SyntheticParams:
        # What no machine can hold either; whether this one can is the generate stage's check
        # (runtime.limits.require_memory): a file from a larger machine still validates here.
        if not self.span <= MAX_ROWS:
            raise ValueError(
                f"generate.step = {self.step!r}: makes {self.span:.3g} rows, more than "
                f"{MAX_ROWS:.3g} (2^53, the most float64 counts exactly); use a larger step "
                f"or a shorter start..end range"
            )
        return self

    @model_validator(mode="after")
    def _fits_float32(self) -> SyntheticParams:
        # The data is float32: a line that leaves its range would be written as inf or nan.
        reach = sum(map(abs, self.weights)) * max(abs(self.start), abs(self.end)) + abs(self.bias)
        reach += 10 * self.noise_std  # noise beyond ten standard deviations never happens
        if not reach <= FLOAT32_REACH:
            raise ValueError(
                f"generate: weight * x + bias + noise reaches {reach:.3g}, beyond float32's "
                f"range (about 3.4e38); use smaller weight, bias, start, end or noise_std"
            )
        return self

    @property
    def weights(self) -> tuple[float, ...]:
        """One weight per feature."""
        return tuple(self.weight) if isinstance(self.weight, list) else (self.weight,)

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns' names: x for one feature (the lesson), else x1, x2, ..."""
        k = len(self.weights)
        return ("x",) if k == 1 else tuple(f"x{i}" for i in range(1, k + 1))

    @property
    def span(self) -> float:
        """(end - start) / step, the row count before rounding up; inf when it overflows."""
        return (self.end - self.start) / self.step

    @property
    def rows(self) -> int:
        """Row count of arange(start, end, step), computed as torch.arange does."""
        return math.ceil(self.span)


# Where a CSV source must live: inside the repository, so that DVC tracks it (dvc.yaml's
# generate stage depends on this folder).
EXTERNAL_DATA = PurePosixPath("data/external")


class CsvParams(_Source):
    """A user's table: feature columns and a target column of a CSV file under data/external/."""

    source: str
    features: Annotated[list[str], _FEATURE_COUNT]
    target: str
    # a row with a missing cell (empty, NA, NaN, null, None): an error, or left out
    missing: Literal["error", "drop"] = "error"

    @model_validator(mode="after")
    def _inside_external_data(self) -> CsvParams:
        path = PurePosixPath(self.source)
        inside = path.parts[:2] == EXTERNAL_DATA.parts and len(path.parts) > 2
        if path.is_absolute() or ".." in path.parts or not inside or "\\" in self.source:
            raise ValueError(
                f"generate.source = {shown(self.source)}: expected synthetic or the path of a "
                f"CSV file under {EXTERNAL_DATA}/ (e.g. {EXTERNAL_DATA}/houses.csv), relative "
                "to the project root"
            )
        return self

    @model_validator(mode="after")
    def _distinct_columns(self) -> CsvParams:
        repeated = sorted({name for name in self.features if self.features.count(name) > 1})
        if repeated:
            raise ValueError(f"generate.features: {shown(repeated[0])} is listed twice")
        if self.target in self.features:
            raise ValueError(
                f"generate.features: includes the target {shown(self.target)}; a column is "
                "either a feature or the target"
            )
        taken = self.target + PREDICTION_SUFFIX
        if taken in self.features:
            raise ValueError(
                f"generate.features: {shown(taken)} is the name reports/predictions.csv gives "
                f"the predictions of {shown(self.target)}; rename that column"
            )
        return self


SYNTHETIC_KEYS = frozenset(SyntheticParams.model_fields) - {"source"}
CSV_KEYS = frozenset(CsvParams.model_fields) - {"source"}
_OTHER_KINDS_KEYS: dict[type[_Source], tuple[frozenset[str], str]] = {
    SyntheticParams: (CSV_KEYS, "a CSV source (generate.source: data/external/NAME.csv)"),
    CsvParams: (SYNTHETIC_KEYS, "generate.source: synthetic"),
}


def _source_kind(data: Any) -> str:
    """Which model reads the generate section: the synthetic one unless source names a file."""
    source = data.get("source", "synthetic") if isinstance(data, dict) else "synthetic"
    return "synthetic" if source == "synthetic" else "csv"


GenerateParams = Annotated[
    Annotated[SyntheticParams, Tag("synthetic")] | Annotated[CsvParams, Tag("csv")],
    Discriminator(_source_kind),
]
# The tags of the generate union: error locations name the key, not the tag.
_UNION_TAGS = {"synthetic": SyntheticParams, "csv": CsvParams}

# The most rows generate.step may ask for: row numbers stay exact in float64.
MAX_ROWS = 2**53
# Largest |y| the data may hold: below FLOAT32_MAX, with room for the noise.
FLOAT32_REACH = 1e38


class SplitParams(_Section):
    train_fraction: float = Field(gt=0, lt=1)
    shuffle: bool
    seed: int = _SEED

    def train_rows(self, rows: int) -> int:
        """How many of `rows` rows go to the train set (the lesson's int(0.8 * len(X)))."""
        return int(self.train_fraction * rows)

    def split_problem(self, rows: int) -> str | None:
        """Why `rows` rows cannot be split so (a set would have none); None when they can."""
        cut = self.train_rows(rows)
        if 1 <= cut < rows:
            return None
        return (
            f"split.train_fraction = {self.train_fraction!r}: leaves {cut} train and "
            f"{rows - cut} test rows of {rows}; each set needs at least 1 row"
        )


class TrainParams(_Section):
    model: str  # a kind conventions.MODELS registers
    loss: Literal["l1", "mse", "huber"]
    optimizer: Literal["sgd", "adam", "lbfgs"]  # lbfgs: full batch only
    lr: float = Field(gt=0, le=FLOAT32_MAX, description="float32's range, whatever train.dtype")
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
    standardize: bool = False
    # the model's, the optimizer's and the losses' precision: float32 is the lesson's
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _lbfgs_full_batch(self) -> TrainParams:
        if self.optimizer == "lbfgs" and self.batch_size:
            raise ValueError(
                f"train.batch_size = {self.batch_size}: train.optimizer = 'lbfgs' takes the full "
                "batch only (train.batch_size: 0)"
            )
        return self

    @field_validator("model")
    @classmethod
    def _registered(cls, kind: str) -> str:
        if kind not in MODELS:
            names = [repr(name) for name in MODELS]  # as pydantic lists a Literal's values
            allowed = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
            raise ValueError(f"train.model = {shown(kind)}: input should be {allowed}")
        return kind


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
        if not isinstance(self.generate, SyntheticParams):
            return self  # a CSV's rows are counted when the split stage reads them
        problem = self.split.split_problem(self.generate.rows)
        if problem:
            raise ValueError(problem)
        return self


# How deep and how large a params file may be, every alias expanded: far above any real one
# (the lesson's holds 40 values, a source of a thousand features some 2,000), far below what
# a crafted one of a few kilobytes would make the parser or an error message build.
MAX_YAML_DEPTH = 32
MAX_YAML_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """YAML's safe loader that also reads 1e-3 as a float (YAML 1.2, as `dvc exp run -S`
    writes), and, before it builds anything, refuses a document nested more than
    MAX_YAML_DEPTH levels, one of more than MAX_YAML_NODES values with its aliases expanded,
    and a key that appears twice in a mapping (YAML keys are unique)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self._depth >= MAX_YAML_DEPTH:  # before the composer's recursion runs out of stack
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        _check_nodes(node, (), {})
        return super().construct_document(node)


def _check_nodes(node: Node, keys: tuple[str, ...], sizes: dict[int, int]) -> int:
    """The values under `node` (at the dotted `keys`), aliases expanded and each alias's node
    counted once: a ComposerError past MAX_YAML_NODES, at a repeated key or at an alias that
    holds itself."""
    if id(node) in sizes:
        if sizes[id(node)] < 0:
            raise ComposerError(None, None, "an alias refers to itself", node.start_mark)
        return sizes[id(node)]
    sizes[id(node)] = -1  # being counted
    size = 1
    if isinstance(node, MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else id(key)
            if name in seen:
                where = ".".join((*keys, str(name)))
                raise ComposerError(
                    None,
                    None,
                    f"key {where} appears twice (lines {seen[name]} and "
                    f"{key.start_mark.line + 1}); keep one",
                    key.start_mark,
                )
            seen[name] = key.start_mark.line + 1
            size += _check_nodes(key, keys, sizes)
            size += _check_nodes(value, (*keys, str(name)), sizes)
    elif isinstance(node, SequenceNode):
        size += sum(_check_nodes(item, keys, sizes) for item in node.value)
    if size > MAX_YAML_NODES:
        raise ComposerError(
            None, None, f"more than {MAX_YAML_NODES:,} values, aliases expanded", node.start_mark
        )
    sizes[id(node)] = size
    return size


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def params_from_text(text: str, source: str = "params.yaml") -> Params:
    """Parse and validate the text of a params file; any problem is one PipelineError line."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: builds no arbitrary objects
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise PipelineError(f"{source}: invalid YAML{line}: {error.problem}") from None
    except yaml.YAMLError as error:  # a YAML error without a position (a NUL byte, ...)
        raise PipelineError(f"{source}: invalid YAML: {shorten(str(error))}") from None
    return params_from_dict(data, source=source)


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
        problems = list(dict.fromkeys(_describe(e) for e in error.errors()))
        # one line: the first problems, and how many more a fix will show next
        more = f"; and {len(problems) - 2} more" if len(problems) > 2 else ""
        raise PipelineError(f"{source}: {'; '.join(problems[:2])}{more}") from None


# The members of generate.weight's union (a number, or a list of them) as pydantic names them
_WEIGHT_FORMS = ("float", "list[float]")


def _describe(error: Any) -> str:
    raw = tuple(shorten(str(part)) for part in error["loc"])
    loc = _spelled(raw)
    key = ".".join(loc)
    kind = error["type"]
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if loc == ("generate", "weight") and len(raw) > 3 and raw[3] in _WEIGHT_FORMS:
        # either form failed: say what both allow, once
        return (
            f"generate.weight: expected a number, or a list of 1 to {MAX_FEATURES:,} numbers "
            "(a weight per feature)"
        )
    if kind == "extra_forbidden":
        known = list(_section_model(raw[:-1]).model_fields)
        what = "section" if len(loc) == 1 else "key"
        return f"unknown {what} {key}: {_suggest(loc[-1], known)}allowed: {', '.join(known)}"
    if kind == "missing":
        return f"missing {'section' if len(loc) == 1 else 'key'} {key}"
    message = error["msg"][0].lower() + error["msg"][1:]
    bound = next(iter(error.get("ctx", {}).values()), None)
    if isinstance(bound, float) and abs(bound) >= 1e16:  # pydantic spells 3.4e38 in 39 digits
        message = re.sub(r"\S+$", repr(bound), message)
    reason = _bound_reason(raw) if kind in ("less_than_equal", "less_than") else None
    because = f" ({reason})" if reason else ""
    return f"{key} = {shown(error['input'])}: {message}{because}"


def _spelled(loc: tuple[str, ...]) -> tuple[str, ...]:
    """An error's location as params.yaml spells it: without the name pydantic gives the
    generate section's form (synthetic or csv), nor the form of generate.weight."""
    parts = list(loc)
    if parts[:1] == ["generate"] and len(parts) > 1 and parts[1] in _UNION_TAGS:
        del parts[1]
    if parts[:2] == ["generate", "weight"] and len(parts) > 2 and parts[2] in _WEIGHT_FORMS:
        del parts[2:]  # the item of a list, too: the message says what the key takes
    return tuple(parts)


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
    """The model of the section at pydantic's error location `loc`."""
    model: Any = Params
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            model = model.model_fields[part].annotation
        else:  # a union of sections: pydantic's location names the member
            model = _UNION_TAGS[part]
    return cast(type[BaseModel], model)


def _names(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)
