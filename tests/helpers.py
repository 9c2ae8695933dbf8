"""What the tests share besides fixtures: the lesson's numbers, the pipeline's artifacts, and
running commands in a test project (a real git repo with DVC, made by harness/project.py)."""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from filelock import FileLock
from hypothesis import HealthCheck, settings

from harness.project import (
    ARTIFACTS,
    ROOT,
    copy_project,
    make_project,
    project_env,
    run_stage,
    stage_commands,
)
from linreg.core.dataset import Dataset
from linreg.core.evaluation import Metrics, evaluate_blocks
from linreg.core.records import Predictions, Truth

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ROOT", "copy_project", "make_project", "project_env", "run_stage"]


# Fuzzed examples: LINREG_FUZZ_SCALE=10 runs ten times as many as `make test` does.
FUZZ_SCALE = int(os.environ.get("LINREG_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples * FUZZ_SCALE,
        derandomize=True,  # seeded: the same examples on every run
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def artifact_bytes(project: Path) -> dict[str, bytes]:
    """Every artifact of the pipeline in `project`, by path."""
    return {name: (project / name).read_bytes() for name in ARTIFACTS}


# The lesson's printed outputs (mrdbourke/pytorch-deep-learning, 01_pytorch_workflow.ipynb):
# model_0 (two nn.Parameters, L1 loss, SGD lr=0.01), epochs 0, 10, ..., 90.
LESSON_TRAIN_LOSS = [
    0.31288138031959534, 0.1976713240146637, 0.08908725529909134, 0.053148526698350906,
    0.04543796554207802, 0.04167863354086876, 0.03818932920694351, 0.03476089984178543,
    0.03132382780313492, 0.02788739837706089,
]  # fmt: skip
LESSON_TEST_LOSS = [
    0.48106518387794495, 0.3463551998138428, 0.21729660034179688, 0.14464017748832703,
    0.11360953003168106, 0.09919948130846024, 0.08886633068323135, 0.0805937647819519,
    0.07232122868299484, 0.06473556160926819,
]  # fmt: skip
LESSON_WEIGHT, LESSON_BIAS = 0.5784, 0.3513  # model_0.state_dict() after 100 epochs
# model_1 (nn.Linear(1, 1)), 1000 epochs: its state_dict, and its epoch 0 losses
LESSON_LINEAR_WEIGHT, LESSON_LINEAR_BIAS = 0.6968, 0.3025
LESSON_LINEAR_EPOCH0 = (0.5551779866218567, 0.5739762187004089)
# The lesson prints 4 decimals of weights; its losses are float32 values printed in full.
LESSON_LOSS_TOLERANCE = 1e-7


# Tests that compare exact numbers or bytes train on the cpu, whatever this machine has: a GPU
# rounds differently (tests/test_gpu.py checks it on its own).
TEST_DEVICE = "cpu"
# The most characters an error line may have: the key, the value (shortened), what is allowed.
ERROR_LINE_LIMIT = 400


def run(
    project: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in `project` (with `env` added to project_env's), capturing its output; fail
    loudly if it fails and `check`."""
    result = subprocess.run(
        args,
        cwd=project,
        env=project_env() | (env or {}),
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def commit_reproduced(project: Path, message: str) -> Path:
    """`dvc repro` in `project`, then everything committed: a template for private_copy."""
    run(project, "dvc", "repro")
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-q", "-m", message)
    return project


def private_copy(template: Path, folder: Path) -> Path:
    """A copy of a template project in `folder` (git history and DVC cache included)."""
    target = folder / "project"
    shutil.copytree(template, target, symlinks=True)
    return target


def built_once(
    factory: pytest.TempPathFactory, worker: str, name: str, build: Callable[[Path], Path]
) -> Path:
    """The project `build` makes in the empty folder it is given, made once for the test run:
    pytest-xdist's workers (`worker`: its worker_id fixture) share it, the first making it
    and the others waiting for it. Copy it, don't touch it."""
    if worker == "master":  # one process: no one to share it with
        return build(factory.mktemp(name))
    shared = factory.getbasetemp().parent  # this run's folder, which holds each worker's
    made = shared / f"{name}.path"
    with FileLock(shared / f"{name}.lock"):
        if not made.exists():  # a failed attempt left no record: each tries in a new folder
            made.write_text(str(build(Path(tempfile.mkdtemp(prefix=name, dir=shared)))))
    return Path(made.read_text())


# Each stage's own command, from dvc.yaml.
STAGE_COMMANDS = stage_commands()


def start_training(project: Path) -> subprocess.Popen[str]:
    """The train stage's own command, started without a shell (env execs python, so a signal
    reaches it) and returned once it has printed its first epoch line."""
    process = subprocess.Popen(
        ["env", *shlex.split(STAGE_COMMANDS["train"])],
        cwd=project,
        env=project_env() | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("epoch")
    return process


class Launcher:
    """tests/programs/stage_launcher.py, started in `project`: it starts stage runs (in that project or
    another copy of it) and reports how they end."""

    def __init__(self, project: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/programs/stage_launcher.py")],
            cwd=project,
            env=project_env() | {"PYTHONPATH": "src"},  # the project's library, as its cmds
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: a line read leaves the next one in the pipe, where select sees it
        )

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def start(self, command: str, stderr: Path, cwd: Path | None = None) -> int:
        """Start a stage's command line (dvc.yaml's, `PYTHONPATH=src python stages/...`),
        in `cwd` if given; its pid."""
        words = shlex.split(command)
        argv = words[words.index("python") + 1 :]
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        request = {"argv": argv, "stderr": str(stderr)} | ({"cwd": str(cwd)} if cwd else {})
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        return int(self.process.stdout.readline())

    def exit_status(self, wait: float | None) -> int | None:
        """The run's exit status (negative: a signal) once it has ended; None while it runs
        after `wait` seconds (None: wait until it ends)."""
        assert self.process.stdout is not None
        if not select.select([self.process.stdout], [], [], wait)[0]:
            return None
        return int(self.process.stdout.readline())

    def run(self, project: Path, command: str, stderr: Path) -> tuple[int, str]:
        """Run a stage's command line in `project` to its end: its exit status and stderr."""
        self.start(command, stderr, project)
        code = self.exit_status(wait=None)
        assert code is not None
        return code, stderr.read_text()


def evaluate_whole(
    model: nn.Module, train: Dataset, test: Dataset, truth: Truth | None, loss: str = "mse"
) -> tuple[Metrics, Predictions]:
    """evaluate_blocks of whole sets held in memory: the metrics and the test predictions."""
    predicted: list[Predictions] = []
    evaluation = evaluate_blocks(model, [train], [test], truth, predicted.append, loss)
    return evaluation.metrics, predicted[0]


def stages_run(output: str) -> list[str]:
    """The stages DVC says it ran, in order, from its "Running stage 'x':" lines."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def install_pause_hook(project: Path) -> None:
    """tests/pause_hook.py, as the project's src/sitecustomize.py: its stages can be paused."""
    shutil.copy(ROOT / "tests/pause_hook.py", project / "src/sitecustomize.py")


def set_param(project: Path, key: str, value: object) -> None:
    """Set one dotted key of the project's params.yaml (None deletes it)."""
    path = project / "params.yaml"
    data = yaml.safe_load(path.read_text())
    *sections, name = key.split(".")
    node = data
    for section in sections:
        node = node[section]
    if value is None:
        del node[name]
    else:
        node[name] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def png_size(png: bytes) -> tuple[int, int]:
    """A PNG's width and height in pixels, from its header."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    return width, height


# ---- ways to break a project: each returns an edit of the project folder it is given ----


def param(key: str, value: object) -> Callable[[Path], None]:
    return lambda project: set_param(project, key, value)


def params_text(old: str, new: str) -> Callable[[Path], None]:
    """Edit params.yaml as text (for what YAML values cannot say: .nan, syntax errors)."""

    def edit(project: Path) -> None:
        path = project / "params.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    return edit


def write(name: str, data: str | bytes) -> Callable[[Path], None]:
    def overwrite(project: Path) -> None:
        path = project / name
        path.unlink()  # DVC links outputs from its cache: never write through the link
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return overwrite


def delete(name: str) -> Callable[[Path], None]:
    return lambda project: (project / name).unlink()


def link_to(target: str, name: str) -> Callable[[Path], None]:
    def replace(project: Path) -> None:
        (project / name).unlink()
        (project / name).symlink_to(target)

    return replace


def make_folder(name: str) -> Callable[[Path], None]:
    def replace(project: Path) -> None:
        (project / name).unlink()
        (project / name).mkdir()

    return replace


def make_fifo(name: str) -> Callable[[Path], None]:
    """A named pipe in the file's place: a reader that opens it waits for a writer forever."""

    def replace(project: Path) -> None:
        (project / name).unlink()
        os.mkfifo(project / name)

    return replace


def grown(name: str, size: int) -> Callable[[Path], None]:
    """The file made `size` bytes long (its text, then spaces and a comment sign)."""

    def grow(project: Path) -> None:
        with (project / name).open("ab") as file:
            file.write(b"#" + b" " * (size - (project / name).stat().st_size))

    return grow


def encoded(name: str, encoding: str) -> Callable[[Path], None]:
    """The file re-saved in another encoding (with a non-ASCII comment where it can hold one)."""

    def reencode(project: Path) -> None:
        text = (project / name).read_text() + ("# café\n" if name.endswith(".yaml") else "")
        write(name, text.encode(encoding))(project)

    return reencode
