"""Fixtures: the project's params, a small line, and real DVC pipelines in temporary git repos.
The helpers they use, and the tests too, are in helpers.py."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from linreg.core.dataset import Dataset
from linreg.core.params import Params, with_overrides
from linreg.io.params import load_params

from .browser import browser
from .helpers import (
    ROOT,
    TEST_DEVICE,
    Launcher,
    built_once,
    commit_reproduced,
    make_project,
    private_copy,
    project_env,
)


def pytest_configure(config: pytest.Config) -> None:
    """A shell that starts `make test &` without job control has SIGINT ignored, and every
    process started from here would inherit that: the Ctrl-C tests would send SIGINT to stages
    that cannot hear it. Ctrl-C works as at a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def chromium() -> str:
    """The browser the browser tests open pages in; asked for first, so that a test without
    one skips (or, in CI, fails) before it builds anything."""
    return browser()


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
    return Dataset(x.reshape(-1, 1), (2 * x - 1).astype(np.float32))


@pytest.fixture(scope="session")
def reproduced_template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A git repo holding the project (training on TEST_DEVICE), committed, with `dvc repro`
    run once, for the whole test run: copy, don't touch."""

    def build(folder: Path) -> Path:
        project = make_project(folder, project_env())
        params = project / "params.yaml"  # edited as text: the comments stay
        params.write_text(params.read_text().replace("device: auto", f"device: {TEST_DEVICE}", 1))
        return commit_reproduced(project, "dvc repro")

    return built_once(tmp_path_factory, worker_id, "template", build)


@pytest.fixture
def project(reproduced_template: Path, tmp_path: Path) -> Path:
    """A private copy of the reproduced project (git history and DVC cache included)."""
    return private_copy(reproduced_template, tmp_path)


@pytest.fixture(scope="session")
def launcher(reproduced_template: Path) -> Iterator[Launcher]:
    """The stage launcher (tests/programs/stage_launcher.py): a stage's run in any project copy without
    paying its imports again."""
    with Launcher(reproduced_template) as started:
        yield started
