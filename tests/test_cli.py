"""Entry points: a user error is one line and exit status 1; a bug is a traceback."""

from __future__ import annotations

import errno
import gc
import re
import signal

import pytest

from harness.project import run_module
from linreg.core.errors import PipelineError
from linreg.runtime.cli import parse_args, run


@pytest.fixture(autouse=True)
def restore_the_collector():
    """run() switches the garbage collector off for its short-lived process: switch it back."""
    yield
    gc.unfreeze()
    gc.enable()


def test_run_leaves_collection_to_refcounting():
    run(lambda: None)
    assert not gc.isenabled()


def fails_for_the_user() -> None:
    raise PipelineError("params.yaml: train.lr = -1: input should be greater than 0")


def test_pipeline_error_is_one_line_and_exit_1(capsys, monkeypatch):
    monkeypatch.delenv("LINREG_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        run(fails_for_the_user)
    assert exit_.value.code == 1
    assert (
        capsys.readouterr().err
        == "error: params.yaml: train.lr = -1: input should be greater than 0\n"
    )


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("LINREG_DEBUG", "1")
    with pytest.raises(PipelineError):
        run(fails_for_the_user)


def test_bugs_propagate():
    def buggy() -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run(buggy)


def test_parse_args_requires_every_path():
    args = parse_args("doc", ["train"], ["loss-png"], ["--train", "a.csv", "--loss-png", "b.png"])
    assert (args.params, args.train, args.loss_png) == ("params.yaml", "a.csv", "b.png")
    with pytest.raises(
        PipelineError, match=r"the following arguments are required: --train \(--help"
    ):
        parse_args("doc", ["train"], [], [])


@pytest.mark.parametrize("path", ["/tmp/model.pt", "../model.pt", "models/../../model.pt"])
def test_outputs_outside_the_repository_are_refused(path):
    with pytest.raises(PipelineError, match=f"^--model {re.escape(path)}: outside the repository"):
        parse_args("doc", [], ["model"], ["--model", path])


def test_inputs_may_come_from_anywhere():
    assert parse_args("doc", ["data"], [], ["--data", "/tmp/data.csv"]).data == "/tmp/data.csv"


def test_outputs_through_a_symlink_out_of_the_repository_are_refused(tmp_path, monkeypatch):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "models").symlink_to(tmp_path)
    monkeypatch.chdir(tmp_path / "repo")
    with pytest.raises(PipelineError, match="outside the repository"):
        parse_args("doc", [], ["model"], ["--model", "models/model.pt"])


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_an_interruption_mid_write_keeps_the_old_file_and_dies_by_its_signal(tmp_path, name):
    (tmp_path / "out.bin").write_bytes(b"old")
    result = run_module(
        "tests.programs.interrupted_write", name, str(tmp_path / "out.bin"), check=False
    )
    assert result.returncode == -getattr(signal, name)
    assert result.stderr == (
        f"error: interrupted by {name}: no file was left half-written;"
        " run it again (dvc repro) to finish\n"
    )
    assert (tmp_path / "out.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary file either


@pytest.mark.parametrize(("outcome", "code", "stderr"), [
    ("works", 0, ""),
    ("fails", 1, "error: data/raw.csv: no space left on the device\n"),
])  # fmt: skip
def test_a_stage_ends_with_its_status_before_the_teardown(tmp_path, outcome, code, stderr):
    result = run_module("tests.programs.aborts_at_exit", outcome, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (code, "done\n", stderr)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "data/raw.csv"),
            "error: data/raw.csv: no space left on the device; free some space and run it again\n",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "reports/metrics.json"),
            "error: reports/metrics.json: permission denied; make it (and its folder) writable or readable by you\n",
        ),
        (
            IsADirectoryError(errno.EISDIR, "Is a directory", "params.yaml"),
            "error: params.yaml: is a folder, not a file; remove or rename it\n",
        ),
    ],
)
def test_os_errors_a_user_can_fix_are_one_line(capsys, monkeypatch, error, line):
    monkeypatch.delenv("LINREG_DEBUG", raising=False)

    def fails() -> None:
        raise error

    with pytest.raises(SystemExit) as exit_:
        run(fails)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == line


def test_other_os_errors_are_bugs():
    def fails() -> None:
        raise ConnectionResetError(errno.ECONNRESET, "reset")

    with pytest.raises(ConnectionResetError):
        run(fails)
