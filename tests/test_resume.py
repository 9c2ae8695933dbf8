"""Long runs: a run killed or stopped at a random epoch and rerun with `dvc repro` ends with the
bytes of an uninterrupted run; a resume point of another run is never used; the train log can
be watched while the stage runs. Real `dvc repro` in temporary git repos."""

from __future__ import annotations

import io
import json
import os
import random
import runpy
import shutil
import signal
import subprocess
import time
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import psutil
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.project import COEFFICIENTS, METRICS, MODEL, PREDICTIONS, TRAIN_LOG
from linreg.core.dataset import Dataset
from linreg.core.errors import PipelineError
from linreg.core.evaluation import LINE_METRICS, METRIC_GOALS
from linreg.core.model import ParameterModel, line_coefficients
from linreg.core.params import TrainParams
from linreg.core.training import Losses, TrainingState, fit
from linreg.io.artifacts import read_coefficients, read_train_log
from linreg.io.checkpoint import load_model
from linreg.io.datasets import read_split, write_dataset
from linreg.io.files import file_digest
from linreg.io.resume_point import save_resume_point
from linreg.runtime import training_run
from linreg.runtime.training_run import TrainingRun, run_fingerprint

from .helpers import (
    ROOT,
    STAGE_COMMANDS,
    Launcher,
    fuzz_settings,
    install_pause_hook,
    private_copy,
    project_env,
    run,
    run_stage,
    set_param,
)
from .one_hidden_layer import OneHiddenLayer

# what the promise covers: the trained model, its log and the metrics computed from it
RESULTS = (MODEL, TRAIN_LOG, METRICS)
RESUME_POINT = ".resume/train.pt"
SEED = random.randrange(2**32)  # draws the epochs where runs are killed; printed on a failure
EPOCHS = 300  # of a long run: a resume point and a kill can land at any of them
PAUSED = "paused"  # the file by which the held train stage says it waits (tests/pause_hook.py)


def long_run(project: Path, nproc: int = 1, batch_size: int = 0) -> None:
    """Params for a run that saves resume points only where the test says (tests/pause_hook.py)
    or where it is stopped; the hook goes into the project."""
    set_param(project, "train.epochs", EPOCHS)
    set_param(project, "train.log_every", 100)
    set_param(project, "train.checkpoint_seconds", 3600)
    set_param(project, "train.nproc", nproc)
    set_param(project, "train.batch_size", batch_size)
    install_pause_hook(project)


def repro(project: Path) -> str:
    """`dvc repro` up to the evaluate stage (the plots are not part of the promise); its output."""
    return run(project, "dvc", "repro", "evaluate").stdout


def start_repro(project: Path, save_at: int = -1, pause_at: int = -1) -> subprocess.Popen[str]:
    """`dvc repro evaluate`, its train stage saving a resume point at the end of epoch `save_at`
    and waiting at the end of epoch `pause_at` until PAUSED is gone (tests/pause_hook.py)."""
    return subprocess.Popen(
        ["dvc", "repro", "evaluate"],
        cwd=project,
        env=project_env()
        | {"PYTHONUNBUFFERED": "1", "LINREG_PAUSE": f"{save_at} {pause_at} {project / PAUSED}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a group of its own: the kill takes dvc, the stage and ranks
    )


def wait_for_pause(project: Path, process: subprocess.Popen[str], flag: str = PAUSED) -> None:
    """Until the train stage waits at its pause epoch (a generous deadline, for a busy machine);
    with `flag` PAUSED.stopped, until a stop has come to it there."""
    deadline = time.monotonic() + 120
    while not (project / flag).exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"the run never made {flag}"
        time.sleep(0.01)


def let_stopped_go(project: Path, process: subprocess.Popen[str]) -> None:
    """Once the stop sent to the paused run has come (to the stage, or to a rank: the stage
    passes it on), let its epoch end."""
    wait_for_pause(project, process, f"{PAUSED}.stopped")
    (project / PAUSED).unlink()  # the epoch ends, with the stop held until then


def kill(project: Path, save_at: int, pause_at: int) -> None:
    """Start `dvc repro`; once the run, having saved a resume point at the end of epoch
    `save_at`, has finished epoch `pause_at`, SIGKILL every process of the run (dvc, the
    stage, its ranks), as when the machine goes away."""
    process = start_repro(project, save_at, pause_at)
    wait_for_pause(project, process)
    os.killpg(process.pid, signal.SIGKILL)
    output = process.communicate(timeout=120)[0]
    assert process.returncode != 0, output  # it did not get to finish
    assert not (project / MODEL).exists()
    assert (project / RESUME_POINT).exists()
    (project / PAUSED).unlink()


def kill_epochs(rng: random.Random, kills: int) -> list[int]:
    """For each kill, the epoch of its resume point and a later one to kill it at, all in
    order: each run is killed after the epochs the one before it reached."""
    return sorted(rng.sample(range(EPOCHS - 1), 2 * kills))


def train_processes(dvc_pid: int) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(dvc_pid).children(recursive=True)
        if p.name().startswith("python") and "stages/train.py" in " ".join(p.cmdline())
    ]


def results(project: Path) -> dict[str, bytes]:
    return {name: (project / name).read_bytes() for name in RESULTS}


def uninterrupted(project: Path, launcher: Launcher) -> dict[str, bytes]:
    """The results of the same params run from scratch, in the same project: the train and
    evaluate stages' own commands (the data stages' outputs are the same)."""
    assert not (project / RESUME_POINT).exists()
    for stage in ("train", "evaluate"):
        code, stderr = launcher.run(project, STAGE_COMMANDS[stage], project / "stderr.txt")
        assert code == 0, stderr
    assert not (project / RESUME_POINT).exists()
    return results(project)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_bytes_of_an_uninterrupted_one(project, launcher):
    """Full batch, one process; two processes resume in the mini-batch test below."""
    save_at, pause_at = kill_epochs(random.Random(SEED), kills=1)
    long_run(project)
    kill(project, save_at, pause_at)

    resumed = repro(project)
    assert f"resumed from epoch {save_at + 1} of {EPOCHS}" in resumed, f"seed {SEED}\n{resumed}"
    assert not (project / RESUME_POINT).exists()  # a finished run leaves none
    assert results(project) == uninterrupted(project, launcher), f"seed {SEED}"


def add_model_kind(project: Path) -> None:
    """tests/one_hidden_layer.py added to the project as docs/development.md says: its one file
    in the library, and its line in conventions.MODELS."""
    shutil.copy(ROOT / "tests/one_hidden_layer.py", project / "src/linreg/core/one_hidden_layer.py")
    registry = project / "src/linreg/core/conventions.py"
    line = f'    "{OneHiddenLayer.kind}": "linreg.core.one_hidden_layer:OneHiddenLayer",\n'
    text = registry.read_text()
    assert "MODELS = {\n" in text
    registry.write_text(text.replace("MODELS = {\n", "MODELS = {\n" + line, 1))


@pytest.mark.slow
def test_a_model_that_is_not_a_line_trains_resumes_evaluates_and_predicts(project):
    """A model kind added in one file goes through the real stages unchanged: trained, killed
    and resumed to the bytes of an uninterrupted run, evaluated without the line's metrics,
    plotted, and used by linreg.predict."""
    save_at, pause_at = kill_epochs(random.Random(SEED), kills=1)
    add_model_kind(project)
    long_run(project)
    set_param(project, "train.model", OneHiddenLayer.kind)
    kill(project, save_at, pause_at)

    output = run(project, "dvc", "repro").stdout  # every stage, the plots too
    assert f"resumed from epoch {save_at + 1} of {EPOCHS}" in output, f"seed {SEED}\n{output}"
    resumed = results(project)
    log = read_train_log(project / TRAIN_LOG)
    assert log.train_loss[-1] < log.train_loss[0] / 2  # it learned
    metrics = json.loads(resumed[METRICS])
    assert sorted(metrics) == sorted(set(METRIC_GOALS) - set(LINE_METRICS))
    coefficients = read_coefficients(project / COEFFICIENTS)  # the least-squares line's alone
    assert [trained for trained, _ in coefficients.values()] == [None, None]

    predictions = pd.read_csv(project / PREDICTIONS)
    x, y_pred = repr(float(predictions["x"][0])), float(predictions["y_pred"][0])
    printed = run(project, "python", "-m", "linreg.predict", x, env={"PYTHONPATH": "src"})
    assert float(printed.stdout.split("\t")[1]) == pytest.approx(y_pred, abs=1e-6)

    for stage in ("train", "evaluate"):  # the same params from scratch
        run_stage(STAGE_COMMANDS[stage], project, project_env())
    assert results(project) == resumed, f"seed {SEED}"


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [1, 2])
def test_mini_batches_killed_twice_still_resume_exactly(project, launcher, nproc):
    """Each rank re-derives its epochs' batches, through two kills."""
    first_save, first_kill, second_save, second_kill = kill_epochs(random.Random(SEED), kills=2)
    long_run(project, nproc, batch_size=20 // nproc)
    kill(project, first_save, first_kill)
    kill(project, second_save, second_kill)
    resumed = repro(project)
    assert f"resumed from epoch {second_save + 1} of {EPOCHS}" in resumed, f"seed {SEED}"
    assert results(project) == uninterrupted(project, launcher), f"seed {SEED}"


@pytest.mark.slow
@pytest.mark.parametrize(("before", "after"), [(2, 1), (1, 2)])
def test_a_full_batch_run_goes_on_with_another_number_of_ranks(project, launcher, before, after):
    """Full batch, the state does not depend on the ranks: a resume point of `before` ranks
    goes on with `after`, and in float64 ends within 1e-9 of `after` ranks from scratch."""
    save_at, pause_at = kill_epochs(random.Random(SEED), kills=1)
    long_run(project, before)
    set_param(project, "train.dtype", "float64")
    kill(project, save_at, pause_at)

    set_param(project, "train.nproc", after)
    output = repro(project)
    assert f"resumed from epoch {save_at + 1} of {EPOCHS}" in output, f"seed {SEED}\n{output}"
    resumed = load_model(project / MODEL), read_train_log(project / TRAIN_LOG)
    uninterrupted(project, launcher)
    fresh = load_model(project / MODEL), read_train_log(project / TRAIN_LOG)
    for one, other in zip(line_coefficients(resumed[0]), line_coefficients(fresh[0]), strict=True):
        np.testing.assert_allclose(one, other, rtol=1e-9, atol=0, err_msg=f"seed {SEED}")
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(
            getattr(resumed[1], name), getattr(fresh[1], name), rtol=1e-9, err_msg=name
        )


@pytest.mark.slow
def test_mini_batches_go_on_with_another_number_of_ranks(project, launcher):
    """A rank's batches are re-derived from the seed, the epoch and the rank: a run of 2 ranks
    goes on with 1, keeping the epochs it had."""
    save_at, pause_at = kill_epochs(random.Random(SEED), kills=1)
    long_run(project, 2, batch_size=10)
    kill(project, save_at, pause_at)
    set_param(project, "train.nproc", 1)
    output = repro(project)
    assert f"resumed from epoch {save_at + 1} of {EPOCHS}" in output, f"seed {SEED}\n{output}"
    resumed = read_train_log(project / TRAIN_LOG)
    set_param(project, "train.nproc", 2)
    uninterrupted(project, launcher)
    before = read_train_log(project / TRAIN_LOG)
    kept = slice(0, save_at + 1)
    np.testing.assert_array_equal(resumed.train_loss[kept], before.train_loss[kept])
    assert len(resumed.train_loss) == EPOCHS


@pytest.mark.slow
def test_a_run_stopped_by_sigterm_saves_where_it_stopped_and_resumes_exactly(project, launcher):
    (pause_at,) = random.Random(SEED).sample(range(EPOCHS - 1), 1)
    long_run(project)  # no resume point but the one the stop saves
    process = start_repro(project, pause_at=pause_at)
    wait_for_pause(project, process)
    (stage,) = train_processes(process.pid)
    stage.send_signal(signal.SIGTERM)
    let_stopped_go(project, process)
    rest = process.communicate(timeout=60)[0]
    assert "interrupted by SIGTERM" in rest, rest
    assert (project / RESUME_POINT).exists()

    output = repro(project)
    assert f"resumed from epoch {pause_at + 1} of {EPOCHS}" in output, f"seed {SEED}\n{output}"
    assert results(project) == uninterrupted(project, launcher), f"seed {SEED}"


def stage_and_ranks(dvc_pid: int) -> tuple[psutil.Process, list[psutil.Process]]:
    """The train stage's process and the ranks it forked."""
    processes = train_processes(dvc_pid)
    pids = {process.pid for process in processes}
    (stage,) = [process for process in processes if process.ppid() not in pids]
    return stage, [process for process in processes if process.ppid() == stage.pid]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stopped", "signum", "batch_size"),
    [("ranks", signal.SIGTERM, 0), ("stage", signal.SIGINT, 10)],
    ids=["SIGTERM to every rank, full batch", "SIGINT to the stage, mini-batches"],
)
def test_two_ranks_stopped_end_the_same_epoch_and_resume_exactly(
    project, launcher, stopped, signum, batch_size
):
    """As a scheduler preempts (SIGTERM to every rank) or a person presses Ctrl-C (SIGINT to
    the stage, which stops its ranks): both ranks end the epoch they are in, one resume point
    is saved, every process ends by the signal, and the rerun goes on from the next epoch to
    the bytes of an uninterrupted run."""
    (pause_at,) = random.Random(SEED).sample(range(EPOCHS - 1), 1)
    long_run(project, 2, batch_size)  # no resume point but the one the stop saves
    process = start_repro(project, pause_at=pause_at)
    wait_for_pause(project, process)
    stage, ranks = stage_and_ranks(process.pid)
    assert len(ranks) == 2
    for target in ranks if stopped == "ranks" else [stage]:
        target.send_signal(signum)
    let_stopped_go(project, process)
    rest = process.communicate(timeout=120)[0]
    assert f"error: interrupted by {signal.Signals(signum).name}" in rest, rest
    assert "Traceback" not in rest, rest
    assert (project / RESUME_POINT).exists()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in [stage, *ranks])

    output = repro(project)
    assert f"resumed from epoch {pause_at + 1} of {EPOCHS}" in output, f"seed {SEED}\n{output}"
    assert results(project) == uninterrupted(project, launcher), f"seed {SEED}"


@pytest.mark.slow
def test_a_stop_while_a_rank_has_failed_ends_by_its_deadline(project, launcher, monkeypatch):
    """Rank 1 killed, then every rank stopped: rank 0 cannot end its epoch with a peer that is
    gone, so it ends (by its deadline at the latest) without saving; no process is left, and
    the rerun resumes from the last good resume point to the uninterrupted bytes."""
    save_at, pause_at = kill_epochs(random.Random(SEED), kills=1)
    long_run(project, 2)
    process = start_repro(project, save_at, pause_at)
    wait_for_pause(project, process)
    stage, ranks = stage_and_ranks(process.pid)
    good = (project / RESUME_POINT).read_bytes()
    ranks[1].kill()
    ranks[1].wait(timeout=60)
    ranks[0].send_signal(signal.SIGTERM)
    let_stopped_go(project, process)
    rest = process.communicate(timeout=training_run.STOP_DEADLINE + 120)[0]
    assert process.returncode != 0, rest
    assert "Traceback" not in rest, rest
    assert (project / RESUME_POINT).read_bytes() == good  # nothing saved at the stop
    for gone in (stage, *ranks):
        assert not gone.is_running() or gone.status() == psutil.STATUS_ZOMBIE

    output = repro(project)
    assert f"resumed from epoch {save_at + 1} of {EPOCHS}" in output, f"seed {SEED}\n{output}"
    assert results(project) == uninterrupted(project, launcher), f"seed {SEED}"


@pytest.mark.slow
def test_a_resume_point_of_other_params_is_removed_not_used(project, launcher):
    long_run(project)
    set_param(project, "train.lr", 0.02)
    kill(project, *kill_epochs(random.Random(SEED), kills=1))

    set_param(project, "train.lr", 0.03)
    output = repro(project)
    assert "resumed" not in output
    assert "a resume point of another run (params, data or code): removed" in output
    assert results(project) == uninterrupted(project, launcher)


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [1, 2])
def test_the_train_log_grows_while_the_stage_runs(project, nproc):
    """And a run stopped by SIGTERM leaves it as DVC left it, with one process or two (each
    rank unwinds before it dies)."""
    set_param(project, "train.nproc", nproc)
    set_param(project, "train.epochs", 1_000_000)
    set_param(project, "train.checkpoint_seconds", 0.2)
    set_param(project, "train.log_every", 100_000)  # no one reads its output while it runs
    log = project / TRAIN_LOG
    process = start_repro(project)
    wait_for((project / RESUME_POINT).exists)  # training: DVC has removed the old log
    wait_for(log.exists)
    assert process.poll() is None
    seen = read_train_log(log)
    wait_for(lambda: len(read_train_log(log).epoch) > len(seen.epoch))
    # `dvc plots show` draws it while `dvc repro` holds its locks
    shown = run(project, "dvc", "plots", "show", TRAIN_LOG, check=False)
    os.killpg(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in output, output
    # a stopped run leaves its log missing, as DVC left it, not partial: `dvc checkout` can
    # restore the committed one without --force
    assert not log.exists()
    run(project, "git", "checkout", "params.yaml", "dvc.lock")
    run(project, "dvc", "checkout")
    assert len(seen.epoch) > 0
    np.testing.assert_array_equal(seen.epoch, np.arange(len(seen.epoch)))


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# ---- in-process -------------------------------------------------------------------------


def train_params(**changes) -> TrainParams:
    base = dict(
        model="parameters", loss="l1", optimizer="sgd", lr=0.01, momentum=0.0, epochs=100,
        batch_size=0, seed=42, device="cpu", log_every=10, nproc=1, checkpoint_seconds=60.0,
    )  # fmt: skip
    return TrainParams(**(base | changes))


def test_the_fingerprint_is_the_run(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("x,y\n0,1\n")
    data = [file_digest(path)]
    base = run_fingerprint(train_params(), data)
    assert run_fingerprint(train_params(checkpoint_seconds=1.0, log_every=5), data) == base
    assert run_fingerprint(train_params(lr=0.02), data) != base
    assert run_fingerprint(train_params(nproc=2), data) == base  # any number of ranks goes on
    path.write_text("x,y\n0,2\n")
    assert run_fingerprint(train_params(), [file_digest(path)]) != base


def lesson_files(folder: Path) -> list[Path]:
    """A small train.csv and test.csv of the lesson's line in `folder`."""
    x = np.arange(50, dtype=np.float32).reshape(-1, 1) / 50
    write_dataset(folder / "train.csv", Dataset(x[:40], 0.7 * x[:40, 0] + 0.3))
    write_dataset(folder / "test.csv", Dataset(x[40:], 0.7 * x[40:, 0] + 0.3))
    return [folder / "train.csv", folder / "test.csv"]


def losses_of(train: list[float], test: list[float]) -> Losses:
    losses = Losses()
    for train_loss, test_loss in zip(train, test, strict=True):
        losses.append(torch.tensor(train_loss), torch.tensor(test_loss))
    return losses


def not_due() -> TrainingState:
    raise AssertionError("no resume point is due within checkpoint_seconds")


def test_a_resume_point_reads_back_and_another_runs_is_removed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = TrainingRun(train_params(), lesson_files(tmp_path), "train_log.csv")
    model = ParameterModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loop = model, optimizer
    saved = model.state_dict(), optimizer.state_dict()
    state = TrainingState(3, *saved, [0.5, 0.25, 0.125], [1.0, 0.5, 0.25])
    save_resume_point(run.path, run.fingerprint, state.__dict__)
    assert run.resumed(*loop) == state
    save_resume_point(run.path, "another run", state.__dict__)
    assert run.resumed(*loop) is None
    assert not run.path.exists()
    out = capsys.readouterr().out
    assert "a resume point of another run (params, data or code): removed; training from" in out


def test_a_run_says_a_line_every_log_every_epochs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = lesson_files(tmp_path)
    train_set, test_set = read_split(*data)
    params = train_params(epochs=25, log_every=10)
    with TrainingRun(params, data, "train_log.csv") as run:
        fit(params, train_set, test_set, run)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[0].split()[1] for line in lines] == ["0", "10", "20"]
    assert "train_loss 0.31288138" in lines[0]  # the lesson's epoch 0


class StopsAfter(TrainingRun):
    """The stage's run, stopped by an exception after epoch `stop_after`, once its resume point
    (one every epoch) is saved."""

    stop_after = -1

    def end_of_epoch(self, epoch, losses, state):  # type: ignore[no-untyped-def]
        super().end_of_epoch(epoch, losses, state)
        if epoch == self.stop_after:
            raise KeyboardInterrupt


@pytest.mark.parametrize("optimizer", get_args(TrainParams.model_fields["optimizer"].annotation))
def test_every_optimizer_resumes_to_the_same_bits(tmp_path, monkeypatch, optimizer):
    """Its whole state (momentum, Adam's averages, L-BFGS's curvature history) goes through
    the resume point: stopped after epoch 30 and resumed, the run ends as one never stopped."""
    monkeypatch.chdir(tmp_path)
    data = lesson_files(tmp_path)
    sets = read_split(*data)
    params = train_params(optimizer=optimizer, momentum=0.5, lr=0.1, checkpoint_seconds=1e-9)
    StopsAfter.stop_after = 30
    with pytest.raises(KeyboardInterrupt), StopsAfter(params, data, "train_log.csv") as run:
        fit(params, *sets, run)
    with TrainingRun(params, data, "train_log.csv") as run:
        resumed = fit(params, *sets, run)
    fresh = fit(params, *sets)
    for name in ("train_loss", "test_loss"):
        np.testing.assert_array_equal(getattr(resumed.history, name), getattr(fresh.history, name))
    for name, value in fresh.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


@pytest.mark.parametrize(
    ("make", "line"),
    [
        (lambda: Path(".resume").write_text("x"), r"^\.resume: a file, where a folder must be"),
        (lambda: Path(".resume/train.pt").mkdir(parents=True), r"^\.resume/train\.pt: not a file"),
        (
            lambda: Path(".resume").symlink_to(Path("..").resolve()),
            r"^\.resume: leads outside the repository",
        ),
    ],
    ids=["a file for the folder", "a folder for the point", "a link out of the repository"],
)
def test_a_resume_point_that_cannot_go_where_it_goes_is_one_line_before_any_work(
    tmp_path, monkeypatch, make, line
):
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    data = lesson_files(tmp_path / "repo")
    make()
    with pytest.raises(PipelineError, match=line):
        TrainingRun(train_params(), data, "train_log.csv")


def test_the_lessons_run_leaves_no_resume_point(project):
    """The reproduced project, at the lesson's size: trained in milliseconds, nothing saved."""
    assert not (project / ".resume").exists()


@pytest.mark.parametrize("before", [b"epoch,train_loss,test_loss\n0,0.5,0.25\n", None])
def test_a_run_that_fails_after_a_live_write_leaves_the_train_log_as_it_was(
    tmp_path, monkeypatch, before
):
    """The train stage's own function, in-process: a live write after every epoch, then a
    divergence; the log that was there before the run (or none, as DVC leaves it) is back."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training_run, "LIVE_LOG_SECONDS", 0.0)
    train_csv, test_csv = lesson_files(tmp_path)
    log = tmp_path / "train_log.csv"
    if before is not None:
        log.write_bytes(before)
    written: list[int] = []
    write_log = training_run.write_train_log

    def live_write(path, history):
        written.append(len(history.epoch))
        write_log(path, history)

    monkeypatch.setattr(training_run, "write_train_log", live_write)
    stage = runpy.run_path(str(ROOT / "stages/train.py"), run_name="probe")
    # the weight grows ~6-fold an epoch: float32 overflows after tens of live writes
    params = train_params(loss="mse", lr=10.0, epochs=1_000)

    paths = Namespace(train=train_csv, test=test_csv, model="model.pt", train_log=log)
    with pytest.raises(PipelineError, match="training diverged at epoch"):
        stage["train"](params, paths)

    assert written[:2] == [1, 2]  # the live log replaced the file from the first epoch on
    assert (log.read_bytes() if log.exists() else None) == before
    assert not (tmp_path / "model.pt").exists()
    assert not list(tmp_path.glob(".resume/*"))


def test_the_log_from_before_a_killed_run_is_the_one_put_back(tmp_path, monkeypatch):
    """A SIGKILL leaves the killed run's live log and the kept one: the next run that stops
    puts back the kept one, not the killed run's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training_run, "LIVE_LOG_SECONDS", 0.0)
    data, log, params = lesson_files(tmp_path), tmp_path / "train_log.csv", train_params()
    log.write_text("good\n")
    killed = TrainingRun(params, data, log)
    killed.end_of_epoch(0, losses_of([0.5], [0.25]), not_due)  # then SIGKILL
    assert log.read_text() != "good\n"

    def stopped_run() -> None:
        with TrainingRun(params, data, log) as again:
            again.end_of_epoch(1, losses_of([0.5, 0.4], [0.25, 0.2]), not_due)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stopped_run()
    assert log.read_text() == "good\n"
    assert os.listdir(tmp_path / ".resume") == []


# ---- resume points that lie -------------------------------------------------------------

SAVED_AT, KILLED_AT = 40, 60  # epochs of the stopped run whose resume point is mutated


class StoppedRun:
    """A project whose train stage was killed, the resume point it left (good) and the results
    of the same run uninterrupted. Not a dataclass: a failing example prints it, not its bytes."""

    def __init__(self, project: Path, point: bytes, expected: dict[str, bytes]) -> None:
        self.project, self.point, self.expected = project, point, expected

    def __repr__(self) -> str:
        return f"StoppedRun({self.project})"


@pytest.fixture(scope="module")
def stopped_run(
    reproduced_template: Path, tmp_path_factory: pytest.TempPathFactory, launcher: Launcher
) -> StoppedRun:
    """A project whose run saved a resume point at the end of epoch SAVED_AT and was killed at
    KILLED_AT, and the results of the same params run uninterrupted, in a copy of it."""
    folder = tmp_path_factory.mktemp("stopped")
    project = private_copy(reproduced_template, folder)
    long_run(project)
    kill(project, SAVED_AT, KILLED_AT)
    reference = private_copy(project, folder / "reference")
    (reference / RESUME_POINT).unlink()
    return StoppedRun(
        project, (project / RESUME_POINT).read_bytes(), uninterrupted(reference, launcher)
    )


def saved_state(point: bytes) -> tuple[str, dict]:
    """The fingerprint and the state a resume point's bytes hold (past its two header lines)."""
    saved = torch.load(io.BytesIO(point.split(b"\n", 2)[2]), weights_only=True)
    return saved["fingerprint"], saved["state"]


def edited(edit: Callable[[dict], object]) -> Callable[[bytes, Path], None]:
    """A mutation that edits the state and saves it with a checksum that matches: a resume
    point anyone with the repository could write."""

    def write(point: bytes, path: Path) -> None:
        fingerprint, state = saved_state(point)
        save_resume_point(path, fingerprint, edit(state))  # type: ignore[arg-type]

    return write


def setting(key: str, value: Callable[[dict], object]) -> Callable[[dict], dict]:
    return lambda state: state | {key: value(state)}


def model_setting(
    name: str, value: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[dict], dict]:
    return lambda state: state | {"model": state["model"] | {name: value(state["model"][name])}}


RESUME_EDITS = {
    "an extra key": setting("extra", lambda state: 1),
    "a missing key": lambda state: {k: v for k, v in state.items() if k != "epoch"},
    "the state as a list": lambda state: list(state.values()),
    "a weight of another shape": model_setting("weight", lambda w: torch.zeros(3)),
    "a NaN weight": model_setting("weight", lambda w: torch.full_like(w, float("nan"))),
    "a complex weight": model_setting("weight", lambda w: w.to(torch.complex64)),
    "a sparse weight": model_setting("weight", lambda w: w.to_sparse()),
    "a float64 bias": model_setting("bias", lambda b: b.double()),
    "a field this code does not know (an older point's batch orders)": setting(
        "batch_orders", lambda s: [torch.Generator().get_state()]
    ),
    "optimizer state for 4 parameters": setting(
        "optimizer",
        lambda s: s["optimizer"] | {"state": {i: {"momentum_buffer": None} for i in range(4)}},
    ),
    "another learning rate": setting(
        "optimizer",
        lambda s: (
            s["optimizer"] | {"param_groups": [s["optimizer"]["param_groups"][0] | {"lr": 9.0}]}
        ),
    ),
    "a key that is not text": lambda state: state | {1: 0},
    "epoch True": setting("epoch", lambda s: True),
    "a learning rate that is a tensor": setting(
        "optimizer",
        lambda s: (
            s["optimizer"]
            | {"param_groups": [s["optimizer"]["param_groups"][0] | {"lr": torch.ones(2)}]}
        ),
    ),
    "a meta weight": model_setting("weight", lambda w: torch.empty_like(w, device="meta")),
    "a nested weight": model_setting("weight", lambda w: torch.nested.nested_tensor([w])),
    "a weight of a tensor subclass": model_setting("weight", lambda w: torch.nn.Parameter(w)),
    "a history 3 times as long": setting("train_loss", lambda s: s["train_loss"] * 3),
    "the history of all epochs": setting("epoch", lambda s: EPOCHS + 1),
    "epoch 0": setting("epoch", lambda s: 0),
}


@pytest.mark.parametrize("name", sorted(RESUME_EDITS))
def test_every_edit_of_a_resume_point_is_one_line_and_removes_it(
    tmp_path, monkeypatch, capsys, name
):
    """In-process, each kind of edit once (the fuzz test below runs a few through dvc repro)."""
    monkeypatch.chdir(tmp_path)
    data = lesson_files(tmp_path)
    params = train_params(checkpoint_seconds=1e-9)
    StopsAfter.stop_after = 2
    with pytest.raises(KeyboardInterrupt), StopsAfter(params, data, "train_log.csv") as run:
        fit(params, *read_split(*data), run)
    point = run.path.read_bytes()
    edited(RESUME_EDITS[name])(point, run.path)
    capsys.readouterr()
    model = ParameterModel()
    loop = model, torch.optim.SGD(model.parameters(), lr=params.lr)
    assert TrainingRun(params, data, "train_log.csv").resumed(*loop) is None
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("removed; training from epoch 0"), line
    assert not run.path.exists()


@st.composite
def resume_mutations(draw: st.DrawFn) -> tuple[str, Callable[[bytes, Path], None]]:
    kind = draw(st.sampled_from(["truncate", "flip", "edit", "edit", "edit"]))
    at = draw(st.integers(min_value=0, max_value=10**6))
    if kind == "truncate":
        return f"truncated at {at}", lambda point, path: path.write_bytes(point[: at % len(point)])
    if kind == "flip":
        bit = draw(st.integers(min_value=0, max_value=7))

        def flip(point: bytes, path: Path) -> None:
            data = bytearray(point)
            data[at % len(data)] ^= 1 << bit
            path.write_bytes(bytes(data))

        return f"bit {bit} of byte {at} flipped", flip
    name = draw(st.sampled_from(sorted(RESUME_EDITS)))
    return name, edited(RESUME_EDITS[name])


@pytest.mark.slow
@fuzz_settings(examples=6)
@given(mutation=resume_mutations())
def test_a_resume_point_that_lies_is_one_line_and_the_run_starts_over(stopped_run, mutation):
    """Truncated, bit-flipped or edited (with a checksum that matches): real `dvc repro` says
    in one line what is wrong, removes the point, trains from epoch 0 and ends with the bytes
    of the uninterrupted run; never a traceback, a hang or a result trained on a lie."""
    name, mutate = mutation
    project = stopped_run.project
    mutate(stopped_run.point, project / RESUME_POINT)
    # --force: train runs (and meets the resume point) whatever an example before it ran
    output = run(project, "dvc", "repro", "--force", "--single-item", "train").stdout
    assert "Traceback" not in output, name
    assert "removed; training from epoch 0" in output, f"{name}\n{output}"
    assert "resumed" not in output, name
    assert not (project / RESUME_POINT).exists(), name
    for trained in (MODEL, TRAIN_LOG):
        assert (project / trained).read_bytes() == stopped_run.expected[trained], name
