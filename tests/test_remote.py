"""Sharing results through a DVC remote (a local folder here): push, a fresh clone pulls and
reproduces nothing, and results travel back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.project import MAKE_PUSH, METRICS, MODEL, PLOTS_PAGE, TRAIN_LOG

from .helpers import (
    ARTIFACTS,
    ROOT,
    artifact_bytes,
    copy_project,
    project_env,
    run,
    set_param,
    stages_run,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def shared(project: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Repo A with a committed DVC remote and a git remote `origin` (bare folders, as a team
    shares them), pushed (run-cache included); B, a fresh clone of origin."""
    run(project, "dvc", "remote", "add", "--default", "shared", str(tmp_path / "remote"))
    run(project, "git", "commit", "-qam", "a shared remote")
    origin = tmp_path / "origin.git"
    run(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    run(project, "git", "remote", "add", "origin", str(origin))
    run(project, "git", "push", "-q", "origin", "main")
    run(project, *MAKE_PUSH)
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(origin), str(clone))
    return project, clone


def test_a_teammate_applies_a_pushed_experiment_and_reproduces_nothing(shared):
    """A's experiment, pushed by `make push` (its git ref to origin, its outputs to the DVC
    remote): B pulls and applies it, metrics and pictures included, and `dvc repro` runs
    nothing."""
    a, b = shared
    run(a, "dvc", "exp", "run", "-n", "faster", "-S", "train.lr=0.1")
    experiment = artifact_bytes(a)  # the workspace run applied it in A
    run(a, *MAKE_PUSH)

    run(b, "dvc", "exp", "pull", "origin", "faster")
    run(b, "dvc", "exp", "apply", "faster")
    run(b, "dvc", "pull")

    assert stages_run(run(b, "dvc", "repro").stdout) == []
    assert "Data and pipelines are up to date" in run(b, "dvc", "status").stdout
    assert artifact_bytes(b) == experiment


def test_a_teammates_clone_draws_the_plots_after_make_pull(shared):
    """The teammate's day one: clone, `make pull`, and DVC's commands work, `dvc plots show`
    too (make writes its page, which git ignores). make runs with this test's own venv (`-o`:
    its packages are installed, so make installs nothing)."""
    a, b = shared
    for name in ("Makefile", "pyproject.toml", "requirements", "tools"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, a / name)
    run(a, "git", "add", "-A")
    run(a, "git", "commit", "-qm", "make")
    run(a, "git", "push", "-q", "origin", "main")
    run(b, "git", "pull", "-q")
    assert not (b / PLOTS_PAGE).exists()

    run(b, "make", "-o", ".venv/.pipeline", "pull")
    assert "Data and pipelines are up to date" in run(b, "dvc", "status").stdout
    assert stages_run(run(b, "dvc", "repro").stdout) == []
    run(b, "dvc", "plots", "show")
    assert (b / "dvc_plots/index.html").is_file()


def test_a_teammates_result_comes_back(shared):
    a, b = shared
    run(b, "dvc", "pull", "--run-cache")
    set_param(b, "plot.dpi", 120)
    assert stages_run(run(b, "dvc", "repro").stdout) == ["validate", "plot"]
    run(b, "git", "commit", "-qam", "plots at 120 dpi")
    run(b, "dvc", "push", "--run-cache")

    run(a, "git", "pull", "-q", str(b), "main")
    run(a, "dvc", "pull", "--run-cache")

    assert artifact_bytes(a) == artifact_bytes(b)
    assert "Data and pipelines are up to date" in run(a, "dvc", "status").stdout


def test_the_run_cache_spares_a_teammate_the_training_of_an_experiment(shared):
    """A's sweep point, run in a temporary copy (as `make sweep` runs them): not in A's
    workspace, yet `make push` sends its outputs, and B's `dvc repro --pull` trains nothing."""
    a, b = shared
    run(a, "dvc", "exp", "run", "--temp", "-S", "train.lr=0.1")
    run(a, *MAKE_PUSH)

    run(b, "dvc", "pull", "--run-cache")
    set_param(b, "train.lr", 0.1)
    output = run(b, "dvc", "repro", "--pull").stdout  # --pull: the cached run's outputs

    assert "Stage 'train' is cached - skipping run, checking out outputs" in output
    assert "train" not in stages_run(output)
    set_param(a, "train.lr", 0.1)
    run(a, "dvc", "repro", "--pull")  # the experiment's outputs, from A's own run-cache
    trained = (MODEL, TRAIN_LOG, METRICS)
    for name in trained:
        assert (b / name).read_bytes() == (a / name).read_bytes(), name
    assert set(trained) < set(ARTIFACTS)
    shutil.rmtree(b / ".dvc/cache")  # nothing else needed it


def test_test_projects_ignore_the_users_dvc_configuration(tmp_path: Path, monkeypatch):
    """A user who followed the README (a default remote in .dvc/config, a global config of
    their own) must still get hermetic test projects: no remote, no other cache."""
    user = tmp_path / "user"
    shutil.copytree(ROOT, user, ignore=shutil.ignore_patterns(".venv", ".git", ".*cache"))
    (user / ".dvc/config").write_text(
        "[core]\n    remote = shared\n['remote \"shared\"']\n    url = /mnt/team\n"
    )
    global_dir = tmp_path / "global"
    global_dir.mkdir()
    (global_dir / "config").write_text("[cache]\n    dir = /tmp/elsewhere\n")
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(global_dir))
    project = tmp_path / "project"

    copy_project(project, root=user)
    run(project, "git", "init", "-q")

    assert run(project, "dvc", "remote", "list").stdout == ""
    assert run(project, "dvc", "cache", "dir").stdout.strip() == str(project / ".dvc/cache")
    assert "DVC_GLOBAL_CONFIG_DIR" in project_env()  # ours, not the user's
    assert project_env()["DVC_GLOBAL_CONFIG_DIR"] != str(global_dir)
