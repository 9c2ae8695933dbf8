"""Fuzzing the stages' inputs: seeded mutations of params.yaml, the CSVs and the checkpoint,
each run through the stage's own command line from dvc.yaml, under a time and a memory cap.
Each run is a process of its own, forked from a launcher that has imported the stages' modules
once (tests/programs/stage_launcher.py): the stage's script, entry point and exit as `python stages/...`, without
~1.6 s of imports a run. test_faults runs a few stages' real commands (`sh -c`, as DVC does).

Every run must end in one of three ways: exit 0 with every output whole and readable; exit 1
with exactly one stderr line `error: ...` of at most ERROR_LINE_LIMIT characters and every
output as it was; or, stopped by the time cap with SIGTERM (as a user's Ctrl-C would stop
it), the one `interrupted` line and every output as it was. Never a traceback, a temporary
file left behind, or a process that outlives the stage. Going over the memory cap is a failure.

The examples are derandomized (the same ones every run, so a failure reproduces). `make test`
runs a few hundred; LINREG_FUZZ_SCALE=10 runs ten times as many.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st

from harness.project import (
    COEFFICIENTS,
    MODEL,
    PREDICTIONS,
    RAW,
    TEST_CSV,
    TRAIN_CSV,
    TRAIN_LOG,
    TRUTH,
)
from linreg.core.conventions import MODELS
from linreg.io.artifacts import read_coefficients
from linreg.io.checkpoint import load_model
from linreg.io.tables import read_csv

from .helpers import ERROR_LINE_LIMIT, ROOT, STAGE_COMMANDS, Launcher, fuzz_settings, set_param

# one worker runs the tests that measure memory or cap time, one after another
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("measures")]

TIME_CAP = 8.0  # seconds a stage may run before it is stopped with SIGTERM
MEMORY_CAP = 3 * 2**30  # bytes of RSS, the stage and its ranks together, above its baseline
STAGE_OUTS = {
    name: [next(iter(out)) if isinstance(out, dict) else out for out in stage.get("outs", [])]
    + [next(iter(metric)) for metric in stage.get("metrics", [])]
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()
}
FOLDERS = ("data", "models", "reports")
# A folder of the project's own among them, which no fuzzed input touches: left as it is.
UNTOUCHED = "external"


@pytest.fixture(scope="module")
def fuzzed(
    reproduced_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    """A reproduced project, and the bytes of its inputs and outputs, restored before each
    example."""
    project = tmp_path_factory.mktemp("fuzz") / "project"
    shutil.copytree(reproduced_template, project, symlinks=True)
    # outputs are copies of DVC's cache entries: make them plain files a mutation may replace
    files = {"params.yaml": (project / "params.yaml").read_bytes()}
    for folder in FOLDERS:
        for path in (project / folder).iterdir():
            if path.name != UNTOUCHED:
                files[str(path.relative_to(project))] = path.read_bytes()
    with Launcher(project) as launcher:
        workspace = Workspace(project, files, launcher, {})
        for stage in STAGE_COMMANDS:  # each stage's peak on the good inputs
            code, stderr, workspace.baseline[stage] = run_capped(workspace, stage)
            assert code == 0, stderr
        yield workspace


@dataclass
class Workspace:
    project: Path
    files: dict[str, bytes]  # every input and output, good
    launcher: Launcher
    baseline: dict[str, int]  # peak RSS of each stage on the good inputs

    def __repr__(self) -> str:  # a failing example prints its arguments: not these bytes
        return f"Workspace({self.project})"

    def restore(self) -> None:
        for folder in FOLDERS:
            for path in (self.project / folder).iterdir():
                if path.name == UNTOUCHED:
                    continue
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()
        params = self.project / "params.yaml"
        if params.is_dir() and not params.is_symlink():
            params.rmdir()
        for name, data in self.files.items():
            path = self.project / name
            path.unlink(missing_ok=True)
            path.write_bytes(data)


def run_capped(workspace: Workspace, stage: str) -> tuple[int, str, int]:
    """The stage under the caps: its exit status (negative: a signal), stderr and peak RSS."""
    with tempfile.NamedTemporaryFile() as stderr:
        pid = workspace.launcher.start(STAGE_COMMANDS[stage], Path(stderr.name))
        started, stopped, peak = time.monotonic(), False, 0
        limit = workspace.baseline.get(stage, 0) + MEMORY_CAP
        while (code := workspace.launcher.exit_status(wait=0.02)) is None:
            peak = max(peak, memory_of(pid))
            if peak > limit:
                os.killpg(pid, signal.SIGKILL)
                pytest.fail(f"{stage} went over the memory cap ({limit:,} bytes)")
            if not stopped and time.monotonic() - started > TIME_CAP:
                os.kill(pid, signal.SIGTERM)
                stopped = True
        text = Path(stderr.name).read_bytes().decode(errors="replace")
    assert_no_process_left(pid)
    return code, text, peak


def memory_of(pid: int) -> int:
    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
        return sum(member.memory_info().rss for member in family)
    except psutil.NoSuchProcess:
        return 0


def assert_no_process_left(group: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        members = [p for p in psutil.process_iter() if _group_of(p) == group]
        if all(p.status() == psutil.STATUS_ZOMBIE for p in members):
            return
        assert time.monotonic() < deadline, f"processes left behind: {members}"
        time.sleep(0.1)


def _group_of(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return None


def check_outcome(workspace: Workspace, stage: str, code: int, stderr: str) -> None:
    project = workspace.project
    outs = STAGE_OUTS[stage]
    strays = [str(p) for folder in FOLDERS for p in (project / folder).glob(".*.tmp")]
    assert strays == [], strays
    if code == 0:
        for name in outs:
            assert_readable(project / name)
        return
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith("error: "), lines[0][:2000]
    assert len(lines[0]) <= ERROR_LINE_LIMIT, lines[0][:2000]
    assert code in (1, -signal.SIGTERM), (code, lines[0])
    if code == -signal.SIGTERM:
        assert lines[0].startswith("error: interrupted by SIGTERM"), lines[0]
    for name in outs:  # all old: a failed stage replaced none of its outputs
        path = project / name
        assert path.is_file(), name
        assert path.read_bytes() == workspace.files[name], name


def assert_readable(path: Path) -> None:
    """A whole output: it parses as what its name says it is."""
    if path.as_posix().endswith(COEFFICIENTS):  # a column of names, then numbers
        assert read_coefficients(path)
    elif path.suffix == ".csv":
        with path.open() as file:
            header = file.readline().strip().split(",")
        assert len(read_csv(path, header)[header[0]]) > 0
    elif path.suffix == ".json":
        json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{path}: {name}"))
    elif path.suffix == ".pt":
        load_model(path)
    elif path.suffix == ".png":
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    else:
        pytest.fail(f"no check for {path}")


# ---- params.yaml ------------------------------------------------------------------------

KEYS = [
    (section, key)
    for section, values in yaml.safe_load((ROOT / "params.yaml").read_text()).items()
    for key in values
]
# the stage that reads each section
READER = {"generate": "generate", "split": "split", "train": "train", "plot": "plot"}

VALUES = st.one_of(
    st.sampled_from(
        [0, 1, -1, 2, 3, 10**6, 10**9, 10**12, 2**31, 2**32, 2**63, 2**64, 10**30, -(10**30)]
    ),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e-12, 1e-7, 0.5, 0.999999, 1.0, 1e300, -1e300]),
    # at and beyond float32's and float64's largest numbers
    st.sampled_from([3.4028234663852886e38, 3.5e38, 1e39, -1e39, 1.7976931348623157e308]),
    st.floats(min_value=-10, max_value=10, allow_nan=False),
    st.integers(min_value=-5, max_value=200),
    st.sampled_from([True, False, None, "", "auto", "cpu", "cuda", "mps", "l1", "adam", "10"]),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)

# what YAML text can say that parsed values cannot
TEXT_TRICKS = [
    ("lr: 0.01", "lr: .nan"),
    ("lr: 0.01", "lr: -.inf"),
    ("lr: 0.01", "lr: !!binary aGVsbG8="),
    ("lr: 0.01", "lr: !!python/object/apply:os.system ['touch pwned']"),
    ("lr: 0.01", "lr: &a [*a]"),
    ("lr: 0.01", "lr: 0x10"),
    ("lr: 0.01", "lr: 1_000"),
    ("lr: 0.01", "lr: 1e400"),
    ("epochs: 100", "epochs: 1e2"),
    ("epochs: 100", "epochs: 100\n  epochs: 200"),
    ("dpi: 100", "dpi:\t100"),
    ("dpi: 100", "dpi: [100"),
    ("dpi: 100", "dpi: " + "[" * 10_000 + "]" * 10_000),
    ("dpi: 100", "dpi: '" + "x" * 100_000 + "'"),
    ("generate:", "generate: !!set"),
    ("generate:", "? [generate]\n:"),
    ("generate:", "<<: {a: 1}\ngenerate:"),
    ("train:", "train: &t\n  lr: 0.02\nother: *t\ntrain2:"),
    ("lr: 0.01", "lr: " + "[" * 100_000),
    ("lr: 0.01", "lr: " + "{a: " * 50_000 + "1" + "}" * 50_000),
    ("lr: 0.01", "lr: 0.5\n  lr: 0.01"),
    ("plot:", "train:\n  lr: 0.1\nplot:"),
    ("plot:", "plot:\n  dpi: 100\nplot:"),
    ("lr: 0.01", "lr: 1e39"),
    ("lr: 0.01", "lr: 3.5e+38"),
]
# nine levels of nine aliases: 387 million values from a file of under 3 KB
ALIAS_BOMB = "".join(
    [f"l0: &l0 [{', '.join(['1'] * 9)}]\n"]
    + [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]\n" for n in range(1, 9)]
)
TEXT_TRICKS.append(("generate:", ALIAS_BOMB + "generate:"))
RAW_TRICKS = [b"", b"\x00", b"\xff\xfe", b"---\n...\n", b"- 1\n- 2\n", b"42\n", b"\xef\xbb\xbf"]


@st.composite
def params_mutations(draw: st.DrawFn) -> tuple[str, Callable[[Path], None]]:
    """(the stage to run, a change of params.yaml)."""
    kind = draw(st.sampled_from(["set", "set", "set", "delete", "add", "text", "raw"]))
    section, key = draw(st.sampled_from(KEYS))
    if kind == "set":
        value = draw(VALUES)
        return READER[section], lambda project: set_param(project, f"{section}.{key}", value)
    if kind == "delete":
        return "generate", lambda project: set_param(project, f"{section}.{key}", None)
    if kind == "add":
        name, value = draw(st.text(min_size=1, max_size=10)), draw(VALUES)
        where = draw(st.sampled_from([section, None]))

        def add(project: Path) -> None:
            path = project / "params.yaml"
            data = yaml.safe_load(path.read_text())
            (data[where] if where else data)[name] = value
            path.write_text(yaml.safe_dump(data))

        return "generate", add
    if kind == "text":
        old, new = draw(st.sampled_from(TEXT_TRICKS))

        def edit(project: Path) -> None:
            path = project / "params.yaml"
            path.write_text(path.read_text().replace(old, new, 1))

        return "generate", edit
    raw = draw(st.sampled_from(RAW_TRICKS))
    prefix = draw(st.booleans())

    def replace(project: Path) -> None:
        path = project / "params.yaml"
        path.write_bytes(raw + path.read_bytes() if prefix else raw)

    return "generate", replace


# ---- CSV files --------------------------------------------------------------------------

CSV_READERS = {RAW: "split", TRAIN_CSV: "train", TEST_CSV: "evaluate"}
CELLS = st.one_of(
    st.sampled_from(["", "nan", "inf", "-inf", "1e39", "-1e39", "1e-46", "0x10", "1,5", '"1"']),
    st.sampled_from(["NaN", "null", "True", " 1", "1 ", "\u0661", "1e", "--1", "0.1.2"]),
    st.text(max_size=8),
    st.floats().map(repr),
)


@st.composite
def csv_mutations(draw: st.DrawFn) -> tuple[str, Callable[[Path], None]]:
    name = draw(st.sampled_from([RAW] * 6 + [TRAIN_CSV] * 2 + [TEST_CSV]))
    kind = draw(
        st.sampled_from(["cell", "cell", "truncate", "insert", "header", "lines", "encode"])
    )
    at = draw(st.integers(min_value=0, max_value=10**6))
    cell, blob = draw(CELLS), draw(st.binary(max_size=16))
    encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]))
    newline = draw(st.sampled_from(["\r\n", "\r", "\n\n", ""]))

    def mutate(project: Path) -> None:
        path = project / name
        data = path.read_bytes()
        lines = data.decode().splitlines()
        if kind == "cell":
            row = 1 + at % (len(lines) - 1)
            cells = lines[row].split(",")
            cells[at % len(cells)] = cell
            lines[row] = ",".join(cells)
            data = ("\n".join(lines) + "\n").encode(errors="surrogatepass")
        elif kind == "truncate":
            data = data[: at % (len(data) + 1)]
        elif kind == "insert":
            cut = at % (len(data) + 1)
            data = data[:cut] + blob + data[cut:]
        elif kind == "header":
            lines[0] = header_variant(at, cell)
            data = ("\n".join(lines) + "\n").encode(errors="surrogatepass")
        elif kind == "lines":
            data = newline.join(lines).encode()
        else:
            data = data.decode().replace("x", "x" + "é" * (at % 2)).encode(encoding)
        path.unlink()
        path.write_bytes(data)

    return CSV_READERS[name], mutate


def header_variant(choice: int, cell: str) -> str:
    """A header with columns swapped, missing, doubled, renamed or differently separated."""
    return ["y,x", "x", "x,y,x", f"x,{cell}", f"{cell},y", "X,Y", "x;y", ""][choice % 8]


# ---- checkpoints ------------------------------------------------------------------------

TENSORS = st.one_of(
    st.sampled_from(
        [
            torch.ones(1),
            torch.ones(3),
            torch.ones(1, 1),
            torch.tensor([float("nan")]),
            torch.tensor([float("inf")]),
            torch.tensor([3e38]),
            torch.ones(1, dtype=torch.int64),
            torch.ones(1, dtype=torch.float16),
            torch.ones(0),
            torch.ones(1).to_sparse(),
            torch.ones(1, dtype=torch.complex64),
            torch.empty(1, device="meta"),
            torch.nested.nested_tensor([torch.ones(1)]),
            torch.quantize_per_tensor(torch.ones(1), 0.1, 0, torch.qint8),
            torch.nn.Parameter(torch.ones(1)),
        ]
    ),
)
CENTRAL_ENTRY = re.escape(b"PK\x01\x02")  # a zip central directory entry's signature
ENTRIES = st.sampled_from(["weight", "bias", "linear.weight", "linear.bias", "other"])


@st.composite
def checkpoint_mutations(draw: st.DrawFn) -> tuple[str, Callable[[Path], None]]:
    kind = draw(st.sampled_from(["flip", "truncate", "state", "state", "claim", "junk"]))
    at = draw(st.integers(min_value=0, max_value=10**6))
    byte = draw(st.integers(min_value=0, max_value=255))
    state = {
        "model": draw(st.sampled_from([*MODELS, "no such model kind", 1, None, ["parameters"]])),
        "state_dict": draw(
            st.one_of(st.dictionaries(ENTRIES, TENSORS, max_size=3), st.sampled_from([None, [1]]))
        ),
    }
    junk = draw(st.binary(max_size=64))

    def mutate(project: Path) -> None:
        path = project / MODEL
        data = bytearray(path.read_bytes())
        if kind == "flip":
            data[at % len(data)] = byte
        elif kind == "truncate":
            data = data[: at % len(data)]
        elif kind == "state":
            buffer = io.BytesIO()
            torch.save(state, buffer)
            data = bytearray(buffer.getvalue())
        elif kind == "claim":  # a central directory entry claims another unpacked size
            entries = [m.start() for m in re.finditer(CENTRAL_ENTRY, data)]
            start = entries[at % len(entries)]
            data[start + 24 : start + 28] = (at * 4099 % 2**32).to_bytes(4, "little")
        else:
            data = bytearray(b"PK\x03\x04" + junk)
        path.unlink()
        path.write_bytes(bytes(data))

    return "evaluate", mutate


# ---- JSON a user can edit --------------------------------------------------------------

JSON_VALUES = st.sampled_from(
    ["NaN", "-Infinity", "1e400", "1" + "0" * 400, "true", '"0.7"', "null", "[0.7]", "{}"]
)


@st.composite
def json_mutations(draw: st.DrawFn) -> tuple[str, Callable[[Path], None]]:
    """(evaluate, data/truth.json with a value JSON has no number for, one out of range, one
    of another type, nesting past any depth, or text that is not JSON)."""
    kind = draw(st.sampled_from(["value", "value", "deep", "junk"]))
    key = draw(st.sampled_from(["weight", "bias", "precision", "rows_dropped"]))
    value = draw(JSON_VALUES)
    depth = draw(st.sampled_from([33, 1000, 100_000]))
    junk = draw(st.binary(max_size=64))

    def mutate(project: Path) -> None:
        path = project / TRUTH
        text = path.read_text()
        if kind == "value":
            data = re.sub(rf'("{key}": )[^,\n}}]+', lambda m: m.group(1) + value, text).encode()
        elif kind == "deep":
            data = ("[" * depth + "]" * depth).encode()
        else:
            data = junk
        path.unlink()
        path.write_bytes(data)

    return "evaluate", mutate


# ---- inputs that are not files ----------------------------------------------------------

# Every file a stage reads, and the stage that reads it.
FILE_READERS = {
    "params.yaml": "generate",
    RAW: "split",
    TRAIN_CSV: "train",
    TEST_CSV: "evaluate",
    MODEL: "evaluate",
    TRUTH: "evaluate",
    PREDICTIONS: "plot",
    TRAIN_LOG: "plot",
}
FILE_KINDS = ("pipe", "link to /dev/zero", "link to /dev/urandom", "folder", "link out", "empty")


@st.composite
def file_kind_mutations(draw: st.DrawFn) -> tuple[str, Callable[[Path], None]]:
    """(the stage that reads the file, the file replaced by what is not one, or by an empty
    one, or by a link to a copy outside the project)."""
    name = draw(st.sampled_from(sorted(FILE_READERS)))
    kind = draw(st.sampled_from(FILE_KINDS))

    def mutate(project: Path) -> None:
        path = project / name
        data = path.read_bytes()
        path.unlink()
        if kind == "pipe":
            os.mkfifo(path)
        elif kind.startswith("link to "):
            path.symlink_to(kind.removeprefix("link to "))
        elif kind == "folder":
            path.mkdir()
        elif kind == "link out":
            outside = project.parent / f"outside-{path.name}"
            outside.write_bytes(data)
            path.symlink_to(outside)
        else:
            path.write_bytes(b"")

    return FILE_READERS[name], mutate


# ---- the properties ---------------------------------------------------------------------


def check(
    workspace: Workspace, mutation: tuple[str, Callable[[Path], None]], may_run_long: bool = True
) -> None:
    """The mutated input through its stage; `may_run_long`: a run stopped by the time cap is an
    outcome (epochs: 10^6 runs long), else it is a hang."""
    stage, mutate = mutation
    workspace.restore()
    mutate(workspace.project)
    code, stderr, _ = run_capped(workspace, stage)
    check_outcome(workspace, stage, code, stderr)
    assert may_run_long or code != -signal.SIGTERM, f"{stage} did not end: {stderr[-500:]}"
    assert not (workspace.project / "pwned").exists()


@fuzz_settings(examples=110)
@given(mutation=params_mutations())
def test_fuzzed_params(fuzzed: Workspace, mutation):
    check(fuzzed, mutation)


@fuzz_settings(examples=60)
@given(mutation=csv_mutations())
def test_fuzzed_csv(fuzzed: Workspace, mutation):
    check(fuzzed, mutation)


@fuzz_settings(examples=30)
@given(mutation=checkpoint_mutations())
def test_fuzzed_checkpoints(fuzzed: Workspace, mutation):
    check(fuzzed, mutation)


@fuzz_settings(examples=20)
@given(mutation=json_mutations())
def test_fuzzed_json(fuzzed: Workspace, mutation):
    check(fuzzed, mutation)


@fuzz_settings(examples=24)
@given(mutation=file_kind_mutations())
def test_fuzzed_file_kinds(fuzzed: Workspace, mutation):
    check(fuzzed, mutation, may_run_long=False)


def test_the_checkpoint_mutations_reach_the_zip_directory():
    """So that `claim` mutations test something: torch.save's archive has central entries."""
    buffer = io.BytesIO()
    torch.save({"model": "parameters"}, buffer)
    assert zipfile.ZipFile(buffer).infolist()
    assert list(re.finditer(CENTRAL_ENTRY, buffer.getvalue()))
