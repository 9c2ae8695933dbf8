"""Shared fixtures: the project's params, and real DVC pipelines in temporary git repos."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.project import ROOT, make_project, project_env, stage_commands
from linreg.dataset import Dataset
from linreg.params import Params, load_params, with_overrides

ARTIFACTS = [
    "data/raw.csv",
    "data/train.csv",
    "data/test.csv",
    "models/model.pt",
    "reports/train_log.csv",
    "reports/metrics.json",
    "reports/predictions.csv",
    "reports/predictions.png",
    "reports/loss_curve.png",
]


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


@pytest.fixture(scope="session")
def params() -> Params:
    """The project's own params.yaml (the lesson's defaults), training on TEST_DEVICE."""
    return with_overrides(
        load_params(ROOT / "params.yaml"), {"train.device": TEST_DEVICE}, source="params.yaml"
    )


@pytest.fixture
def line() -> Dataset:
    """A small clean line y = 2x - 1 on [0, 1)."""
    x = np.arange(20, dtype=np.float32) / 20
    return Dataset(x, (2 * x - 1).astype(np.float32))


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


def stages_run(output: str) -> list[str]:
    """The stages DVC says it ran, in order, from its "Running stage 'x':" lines."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


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


@pytest.fixture(scope="session")
def reproduced_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo holding the project (training on TEST_DEVICE), committed, with `dvc repro`
    run once: copy, don't touch."""
    project = make_project(tmp_path_factory.mktemp("template"), project_env())
    params = project / "params.yaml"  # edited as text: the comments stay
    params.write_text(params.read_text().replace("device: auto", f"device: {TEST_DEVICE}", 1))
    run(project, "dvc", "repro")
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-q", "-m", "dvc repro")
    return project


@pytest.fixture
def project(reproduced_template: Path, tmp_path: Path) -> Path:
    """A private copy of the reproduced project (git history and DVC cache included)."""
    target = tmp_path / "project"
    shutil.copytree(reproduced_template, target, symlinks=True)
    return target
