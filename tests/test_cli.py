"""Entry points: a user error is one line and exit status 1; a bug is a traceback."""

from __future__ import annotations

import gc

import pytest

from linreg.cli import parse_args, run
from linreg.errors import PipelineError


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
    args = parse_args(
        "doc", {"train": "in", "loss-png": "out"}, ["--train", "a.csv", "--loss-png", "b.png"]
    )
    assert (args.params, args.train, args.loss_png) == ("params.yaml", "a.csv", "b.png")
    with pytest.raises(SystemExit):
        parse_args("doc", {"train": "in"}, [])
