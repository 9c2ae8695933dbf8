"""Bad input and faults, against the real stages and `dvc repro`: every case ends with a
non-zero exit and one clear line, and leaves the last good artifacts in place or restorable.

The table runs each stage's own command from dvc.yaml in a reproduced project: a failed stage
must leave every artifact byte-identical to the good ones and no temporary file behind.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import torch

from harness.project import MODEL, RAW, TRAIN_CSV, TRAIN_LOG
from linreg.core.model import build_model

from .helpers import (
    ARTIFACTS,
    ERROR_LINE_LIMIT,
    ROOT,
    STAGE_COMMANDS,
    Launcher,
    artifact_bytes,
    delete,
    encoded,
    link_to,
    param,
    project_env,
    run,
    set_param,
    start_training,
    write,
)

pytestmark = pytest.mark.slow

MARKER = "pwned"  # the file a malicious checkpoint would create if it were unpickled


# ---- ways to break a project -----------------------------------------------------------


def truncate(name: str, size: int) -> Callable[[Path], None]:
    return lambda project: write(name, (project / name).read_bytes()[:size])(project)


def checkpoint(state: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


class RunsCode:
    """Unpickling this would create the marker file: a checkpoint meant to run code."""

    def __reduce__(self):
        return (open, (MARKER, "w"))


MALICIOUS = checkpoint({"model": "parameters", "state_dict": {}, "payload": RunsCode()})
OTHER_SHAPE = checkpoint(
    {"model": "parameters", "state_dict": {"weight": torch.ones(1), "bias": torch.ones(2)}}
)
THREE_FEATURES = checkpoint(
    {"model": "parameters", "state_dict": {"weight": torch.ones(3), "bias": torch.ones(1)}}
)
OTHER_TYPE = checkpoint({"model": "linear", "state_dict": build_model("parameters").state_dict()})
NAN_WEIGHT = checkpoint(
    {
        "model": "parameters",
        "state_dict": {"weight": torch.tensor([float("nan")]), "bias": torch.ones(1)},
    }
)


def zip_bomb() -> bytes:
    """A checkpoint whose zip directory claims a 4 GiB entry in a file of a few hundred bytes:
    torch would allocate what it claims."""
    data = bytearray(checkpoint({"model": "parameters", "state_dict": {}}))
    # every central directory entry: signature, then the uncompressed size at offset 24
    start = data.find(b"PK\x01\x02")
    data[start + 24 : start + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    return bytes(data)


@dataclass(frozen=True)
class Case:
    id: str
    stage: str
    breaks: Callable[[Path], None]
    message: str  # a regular expression the one error line must match after "error: "


CASES = [
    # params.yaml: every stage validates the whole file with the same code; test_params checks
    # each message in-process, and these two prove that a stage prints it as its one line
    Case("params missing", "generate", delete("params.yaml"), r"params\.yaml: file not found"),
    Case(
        "seed beyond 64 bits",
        "train",
        param("train.seed", 2**64),
        r"params\.yaml: train\.seed = 18446744073709551616: input should be less than or equal to 4294967295 \(seeds are 32-bit",
    ),
    # data files: split reads data/raw.csv, train reads data/train.csv
    Case("csv missing", "split", delete(RAW), r"data/raw\.csv: file not found"),
    Case(
        "one column",
        "split",
        write(RAW, "x\n0\n0.02\n"),
        r"data/raw\.csv: 1 column\(s\); expected feature columns and the target, last",
    ),
    Case(
        "non-numeric cell",
        "split",
        write(RAW, "x,y\n0,0.3\n0.02,abc\n"),
        r"data/raw\.csv: line 3, column y: 'abc' is not a number",
    ),
    Case(
        "nan cell",
        "split",
        write(RAW, "x,y\n0,0.3\nnan,0.314\n"),
        r"data/raw\.csv: line 3, column x: nan is not a finite number",
    ),
    Case(
        "inf cell",
        "split",
        write(RAW, "x,y\n0,0.3\n0.02,inf\n"),
        r"data/raw\.csv: line 3, column y: inf is not a finite number",
    ),
    Case("empty file", "split", write(RAW, ""), r"data/raw\.csv: empty file"),
    Case(
        "header only",
        "split",
        write(RAW, "x,y\n"),
        r"data/raw\.csv: no data rows \(a header line only\)",
    ),
    Case(
        "truncated last line",
        "split",
        truncate(RAW, 100),
        r"data/raw\.csv: its last line has no end: the file was cut short \(every file the ",
    ),
    Case(
        "wrong delimiter",
        "split",
        write(RAW, "x;y\n0;0.3\n"),
        r"data/raw\.csv: one column 'x;y' \(separated by ';'\? columns are separated by ','\)",
    ),
    Case(
        "csv utf-16",
        "split",
        encoded(RAW, "utf-16"),
        r"data/raw\.csv: not UTF-8 text \(byte 0xff at offset 0\); save it as UTF-8$",
    ),
    Case(
        "csv utf-16 without a BOM",
        "split",
        encoded(RAW, "utf-16-le"),
        r"data/raw\.csv: not UTF-8 text \(a NUL byte at offset 1: UTF-16\?\); save it as UTF-8$",
    ),
    Case(
        "csv latin-1",
        "split",
        write(RAW, "x,y\n0,caf\xe9\n".encode("latin-1")),
        r"data/raw\.csv: not UTF-8 text \(byte 0xe9 at offset 9\); save it as UTF-8$",
    ),
    Case(
        "csv one 50 MB line",
        "split",
        write(RAW, "x,y\n0," + "a" * 50_000_000 + "\n"),
        r"data/raw\.csv: line 2: longer than the 4,194,304 bytes a line may hold; a line of the "
        r"data has a number per column$",
    ),
    Case(
        "csv a device",
        "split",
        link_to("/dev/zero", RAW),
        r"data/raw\.csv: not a regular file \(a device, pipe or socket\); expected a file",
    ),
    Case(
        "bad train csv",
        "train",
        write(TRAIN_CSV, "x,y\n0,0.3\n0.02,\n"),
        r"data/train\.csv: line 3, column y: '' is not a number",
    ),
    # training and devices
    Case(
        "diverges",
        "train",
        lambda project: (param("train.lr", 1e6)(project), param("train.loss", "mse")(project)),
        r"train\.lr = 1000000\.0: training diverged at epoch \d+ \(train loss (inf|nan), "
        r"test loss (inf|nan)\); no checkpoint written; try a lower train\.lr, e\.g\. 100000",
    ),
    Case(
        "device absent",
        "train",
        param("train.device", "cuda"),
        r"train\.device = 'cuda': not available on this machine; available: cpu",
    ),
    # checkpoints, as evaluate loads them
    Case(
        "checkpoint runs code",
        "evaluate",
        write(MODEL, MALICIOUS),
        r"models/model\.pt: not a readable checkpoint \(Weights only load failed",
    ),
    Case(
        "checkpoint of another shape",
        "evaluate",
        write(MODEL, OTHER_SHAPE),
        r"models/model\.pt: weights do not fit model 'parameters': bias has shape \(2,\), "
        r"expected \(1,\)$",
    ),
    Case(
        "checkpoint for other features",
        "evaluate",
        write(MODEL, THREE_FEATURES),
        r"the model takes 3 feature\(s\), the data has 1 \(x\): retrain it on this data$",
    ),
    Case(
        "checkpoint of another type",
        "evaluate",
        write(MODEL, OTHER_TYPE),
        r"models/model\.pt: weights do not fit model 'linear': missing linear\.weight, "
        r"linear\.bias; unexpected weight, bias \(a checkpoint of another model\?\)",
    ),
    Case(
        "checkpoint truncated",
        "evaluate",
        truncate(MODEL, 300),
        r"models/model\.pt: not a readable checkpoint",
    ),
    Case(
        "not a checkpoint",
        "evaluate",
        write(MODEL, "weight,bias\n0.5,0.3\n"),
        r"models/model\.pt: not a readable checkpoint \(not a torch\.save zip archive\)",
    ),
    Case(
        "checkpoint a zip bomb",
        "evaluate",
        write(MODEL, zip_bomb()),
        r"models/model\.pt: not a torch\.save checkpoint: its entries claim [\d,]+ bytes unpacked in a file of [\d,]+ \(torch\.save does not compress\)$",
    ),
    Case(
        "checkpoint with a NaN weight",
        "evaluate",
        write(MODEL, NAN_WEIGHT),
        r"models/model\.pt: weights do not fit model 'parameters': weight holds NaN or infinite "
        r"values$",
    ),
    Case(
        "checkpoint a link to /dev/zero",
        "evaluate",
        link_to("/dev/zero", MODEL),
        r"models/model\.pt: not a regular file \(a device, pipe or socket\); expected a file \(run the train stage first\)$",
    ),
    Case(
        "checkpoint missing",
        "evaluate",
        delete(MODEL),
        r"models/model\.pt: file not found \(run the train stage first\)",
    ),
    # paths: a stage writes inside the repository only
    Case(
        "output outside the repository",
        "generate",
        lambda project: None,
        r"--out \.\./raw\.csv: outside the repository \(.*\); outputs are written inside it",
    ),
]


def stray_files(project: Path) -> list[str]:
    """Temporary files of atomic writes, and anything else unknown, next to the artifacts."""
    known = {Path(name).name for name in ARTIFACTS} | {".gitignore", "external"}
    return sorted(
        str(path.relative_to(project))
        for folder in ("data", "models", "reports")
        for path in (project / folder).iterdir()
        if path.name not in known
    )


# These run as DVC runs a stage, `sh -c` its command: they prove the wiring of a stage's own
# process (one line on stderr, exit 1), one case a stage. The others run the same script and
# entry point forked from the stage launcher, without paying the imports again.
THROUGH_A_SHELL = {"params missing", "csv missing", "bad train csv", "checkpoint missing"}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_input_is_one_line_and_loses_nothing(
    project: Path, launcher: Launcher, tmp_path: Path, case: Case
):
    if case.id == "device absent" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    good = artifact_bytes(project)
    case.breaks(project)
    broken = {
        name: (project / name).read_bytes() for name in ARTIFACTS if (project / name).is_file()
    }
    command = STAGE_COMMANDS[case.stage]
    if case.id == "output outside the repository":
        command = command.replace("--out data/raw.csv", "--out ../raw.csv")

    if case.id in THROUGH_A_SHELL:
        result = run(project, "sh", "-c", command, check=False)
        code, stderr = result.returncode, result.stderr
    else:
        code, stderr = launcher.run(project, command, tmp_path / "stderr")

    assert code == 1, stderr
    assert len(stderr.splitlines()) == 1, stderr[:1000]
    assert len(stderr) <= ERROR_LINE_LIMIT, stderr[:1000]
    assert re.match(f"error: {case.message}", stderr), stderr
    # What the stage writes is as it was: the good artifacts, or the broken input we planted.
    now = {name: (project / name).read_bytes() for name in ARTIFACTS if (project / name).is_file()}
    assert now == broken
    assert [name for name in good if now.get(name) != good[name]] == [
        name for name in good if broken.get(name) != good[name]
    ]  # only what the case broke differs from the good artifacts
    assert stray_files(project) == []
    assert not (project / MARKER).exists()
    assert not (project.parent / "raw.csv").exists()


def test_the_malicious_checkpoint_would_run_code_if_fully_unpickled(tmp_path: Path, monkeypatch):
    """So that the case above proves something: this file does create the marker when
    loaded without weights_only."""
    (tmp_path / "model.pt").write_bytes(MALICIOUS)
    monkeypatch.chdir(tmp_path)
    torch.load("model.pt", weights_only=False)
    assert (tmp_path / MARKER).exists()


# ---- through DVC: removed outputs, interruption, the lock, recovery --------------------


def recover(project: Path) -> None:
    """What docs/when-something-goes-wrong.md says to do after a failed run."""
    run(project, "git", "checkout", "params.yaml", "dvc.lock")
    run(project, "dvc", "checkout")


def assert_back_to_good(project: Path, good: dict[str, bytes]) -> None:
    assert artifact_bytes(project) == good
    assert "Data and pipelines are up to date" in run(project, "dvc", "status").stdout
    assert stray_files(project) == []


def test_a_failed_repro_loses_nothing_dvc_checkout_restores_it(project: Path):
    good = artifact_bytes(project)
    set_param(project, "train.lr", 1e6)
    set_param(project, "train.loss", "mse")

    result = run(project, "dvc", "repro", check=False)

    assert result.returncode != 0
    assert "error: train.lr = 1000000.0: training diverged at epoch" in result.stderr
    # DVC removed train's outputs before running it; the stage wrote none of them
    assert not (project / MODEL).exists()
    assert not (project / TRAIN_LOG).exists()
    recover(project)
    assert_back_to_good(project, good)


def start_long_repro(project: Path, shell: str = "/bin/sh") -> subprocess.Popen[str]:
    """`dvc repro` with a training run of a million epochs, returned once it is training.
    DVC runs each stage's cmd with $SHELL -c."""
    set_param(project, "train.epochs", 1_000_000)
    env = project_env() | {"PYTHONUNBUFFERED": "1", "SHELL": shell}
    process = subprocess.Popen(
        ["dvc", "repro"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job is
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("epoch"):
            return process
    raise AssertionError(f"dvc repro ended before training: exit {process.wait()}")


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    assert process.stdout is not None
    rest = process.stdout.read()
    return process.wait(timeout=60), rest


def test_ctrl_c_during_training_leaves_no_partial_output_and_repro_completes(project: Path):
    good = artifact_bytes(project)
    process = start_long_repro(project)

    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground job gets it
    code, output = finish(process)

    assert code != 0
    assert "error: interrupted by SIGINT: no file was left half-written" in output
    assert not (project / MODEL).exists()
    assert not (project / TRAIN_LOG).exists()
    assert stray_files(project) == []
    run(project, "git", "checkout", "params.yaml")
    run(project, "dvc", "repro")  # completes normally
    assert_back_to_good(project, good)


def test_sigterm_to_a_stage_leaves_the_old_artifacts(project: Path):
    good = artifact_bytes(project)
    set_param(project, "train.epochs", 1_000_000)
    process = start_training(project)
    process.terminate()
    assert process.wait(timeout=60) == -signal.SIGTERM
    assert process.stderr is not None
    assert process.stderr.read() == (
        "error: interrupted by SIGTERM: no file was left half-written;"
        " run it again (dvc repro) to finish\n"
    )
    assert artifact_bytes(project) == good
    assert stray_files(project) == []


def test_a_second_repro_is_refused_by_dvcs_locks(project: Path):
    good = artifact_bytes(project)
    first = start_long_repro(project)
    try:
        second = run(project, "dvc", "repro", check=False)
        assert second.returncode != 0  # refused, not queued: the first trains for ever
        # DVC holds a read/write lock on each running stage's deps and outs
        assert "data/test.csv' is busy, it is being blocked by:" in second.stderr
        assert first.poll() is None  # the first one runs on, untouched
    finally:
        os.killpg(first.pid, signal.SIGINT)
        finish(first)
    recover(project)
    assert_back_to_good(project, good)


def test_a_typod_section_fails_repro_and_experiments(project: Path):
    """No stage reads `plott`; the validate stage tracks the whole file and stops there."""
    set_param(project, "plott", {"dpi": 300})
    result = run(project, "dvc", "repro", check=False)
    assert result.returncode != 0
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: params.yaml: unknown section plott: did you mean 'plot'? "
        "allowed: generate, split, train, plot"
    ]
    run(project, "git", "checkout", "params.yaml")
    # DVC adds a key that params.yaml lacks only with a +
    experiment = run(project, "dvc", "exp", "run", "-S", "+plott.dpi=300", check=False)
    assert experiment.returncode != 0
    assert "error: params.yaml: unknown section plott" in experiment.stderr


def gone(processes: list[psutil.Process], seconds: float = 60) -> bool:
    """Whether every one of `processes` has ended (or is a zombie) within `seconds`."""
    deadline = time.monotonic() + seconds
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# dash (Debian's /bin/sh, DVC's shell where $SHELL is unset) stays between DVC and the stage;
# bash execs the stage in its place.
@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_a_stage_dies_with_the_dvc_that_started_it(project: Path, shell: str):
    """kill -9 of `dvc repro` alone: its train stage must not run on and later overwrite the
    outputs of a newer run."""
    if not Path(shell).exists():
        pytest.skip(f"{shell} is not on this machine")
    process = start_long_repro(project, shell)
    dvc = psutil.Process(process.pid)
    stage = [p for p in dvc.children(recursive=True) if "stages/train.py" in " ".join(p.cmdline())]
    assert any(p.name().startswith("python") for p in stage)

    dvc.kill()
    process.wait(timeout=60)

    assert gone(stage)
    assert not (project / MODEL).exists()  # DVC removed it; nobody wrote it
    assert not (project / TRAIN_LOG).exists()
    assert stray_files(project) == []


def test_ranks_die_with_their_stage(project: Path):
    set_param(project, "train.nproc", 2)
    set_param(project, "train.epochs", 1_000_000)
    process = start_training(project)
    stage = psutil.Process(process.pid)
    ranks = stage.children()
    assert len(ranks) == 2

    stage.kill()  # SIGKILL: the stage cannot stop its ranks itself
    process.wait(timeout=60)

    assert gone(ranks)


SMALL_DISK = ROOT / "tests/programs/small_disk.sh"


def _mount_namespace_refusal() -> str | None:
    """Why this machine gives no private mount namespace (None when it does): unprivileged
    user namespaces can be switched off (Ubuntu 24.04's AppArmor does), and unshare missing."""
    try:
        probe = subprocess.run(
            ["unshare", "--map-root-user", "--mount", "true"], capture_output=True, text=True
        )
    except FileNotFoundError:
        return "no unshare command"
    return None if probe.returncode == 0 else probe.stderr.strip() or f"exit {probe.returncode}"


@pytest.fixture(scope="module")
def mount_namespace() -> None:
    refusal = _mount_namespace_refusal()
    if refusal:
        pytest.skip(f"needs a private mount namespace for a small tmpfs: {refusal}")


def run_on_a_small_disk(project: Path, stage: str, free_pages: str, save: Path) -> tuple[int, str]:
    """Run `stage` with reports/ on a small tmpfs (tests/programs/small_disk.sh); its exit
    status and stderr."""
    (save / "reports").mkdir(parents=True)
    env = {"STAGE": STAGE_COMMANDS[stage], "FREE_PAGES": free_pages, "SAVE": str(save)}
    run(project, "unshare", "--map-root-user", "--mount", "sh", str(SMALL_DISK), env=env)
    return int((save / "status").read_text()), (save / "stderr").read_text()


@pytest.mark.parametrize(
    ("free_pages", "line"),
    [
        # one free page: evaluate's metrics fit, its predictions do not
        (
            "1",
            "reports/predictions.csv: no space left on the device; free some space and run it again",
        ),
        (  # evaluate writes its predictions first, as it makes them
            "ro",
            "reports/predictions.csv: read-only file system; run from a writable copy of the "
            "project",
        ),
    ],
    ids=["disk full", "read-only"],
)
@pytest.mark.usefixtures("mount_namespace")
def test_a_disk_that_refuses_writes_is_one_line_and_outputs_stay_all_old(
    project: Path, tmp_path: Path, free_pages: str, line: str
):
    good = artifact_bytes(project)
    code, stderr = run_on_a_small_disk(project, "evaluate", free_pages, tmp_path / "save")
    assert code == 1, stderr
    assert stderr == f"error: {line}\n"
    reports = tmp_path / "save/reports"
    for name in ("metrics.json", "predictions.csv"):  # neither was replaced
        assert (reports / name).read_bytes() == good[f"reports/{name}"]
    assert not list(reports.glob(".*.tmp"))


@pytest.mark.slow
def test_a_pipe_in_the_folder_generate_depends_on_stops_repro_at_validate(project: Path):
    """DVC hashes every file of data/external (generate depends on it) and waits forever on a
    named pipe there, before any code of ours runs (`dvc status` alone hangs). The validate
    stage, which DVC runs first whenever params.yaml changed, says so in one line instead."""
    os.mkfifo(project / "data/external/pipe")
    set_param(project, "train.lr", 0.02)
    result = run(project, "dvc", "repro", check=False)
    assert result.returncode != 0
    assert "error: data/external/pipe: not a file (a pipe, socket or device); DVC would wait" in (
        result.stderr
    )
