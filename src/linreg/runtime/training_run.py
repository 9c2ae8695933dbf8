"""The machinery around the train stage's loop: resume points, signals held to an epoch's end,
the live train log a person can watch, and the progress a person at a terminal sees.

A resume point is saved at the end of an epoch once train.checkpoint_seconds have passed since
the last one, and at the end of the epoch in which SIGINT or SIGTERM came (to any rank of a
process group: all end that epoch together). It belongs to one run: its fingerprint covers the
train params (but checkpoint_seconds, log_every and nproc), the bytes of the data and the
library's code; full batch, a run of another number of ranks continues it (docs/long-runs.md).
It is kept in RESUME_FOLDER, which git and DVC ignore; DVC removes a stage's outputs before it
runs the stage, so a resume point cannot be one of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType

import torch
from torch import nn
from tqdm import tqdm

from linreg.core.errors import PipelineError
from linreg.core.params import TrainParams
from linreg.core.placement import placement
from linreg.core.training import FitResult, Losses, TrainingState
from linreg.io.artifacts import write_train_log
from linreg.io.checkpoint import save_checkpoint
from linreg.io.files import all_or_none, check_folder, write_bytes_atomic
from linreg.io.resume_point import (
    UnusableResumePoint,
    check_resumable,
    read_resume_point,
    save_resume_point,
    state_of,
)
from linreg.io.tables import part_digests
from linreg.runtime.signals import HeldStops

RESUME_FOLDER = Path(".resume")
# Seconds between two rewrites of the live train log.
LIVE_LOG_SECONDS = 2.0
# Seconds a stopped rank of a process group waits for its epoch to end with the others' before
# it ends without saving (docs/long-runs.md)
STOP_DEADLINE = 60.0
# train params that change neither what is computed nor in which order; and nproc: the number
# of ranks (torchrun's too) is no part of a full-batch state, and a mini-batch state says its own
_NOT_IN_FINGERPRINT = {"checkpoint_seconds", "log_every", "nproc"}


def run_fingerprint(params: TrainParams, data: Sequence[bytes]) -> str:
    """What makes two runs the same run: the params that shape the computation, the data (the
    sha256 of each block of the files: tables.part_digests) and the code of every linreg module
    loaded. Not the number of ranks: the state does not depend on it (an epoch's mini-batches
    are drawn from train.seed, the epoch and the rank: core/batches.py)."""
    digest = hashlib.sha256()
    shaping = params.model_dump(exclude=_NOT_IN_FINGERPRINT)
    digest.update(json.dumps(shaping, sort_keys=True).encode())
    for data_digest in data:
        digest.update(data_digest)
    for name in sorted(name for name in sys.modules if name.split(".")[0] == "linreg"):
        source = getattr(sys.modules[name], "__file__", None)
        if source:
            digest.update(name.encode() + Path(source).read_bytes())
    return digest.hexdigest()


class TrainingRun:
    """One run of the train stage around fit's loop (core.training.Run), for this process: it
    resumes from the run's resume point, saves new ones as they fall due, keeps the live log,
    and prints a line every train.log_every epochs. A single process that saves resume points
    holds SIGINT and SIGTERM to the end of the epoch in which they come, saves, then stops.

    As a context manager: a run that fails or is stopped puts back the train log that was
    there before it (none, when DVC had removed it); one that finishes removes its resume
    point and that kept log."""

    def __init__(self, params: TrainParams, data: Sequence[str | Path], live_log: str | Path):
        self.params, self.live_log = params, Path(live_log)
        self.where = placement(params.device)
        self.part, self.parts = self.where.rank, self.where.world_size  # of each data file
        self.writes = self.where.writes  # this process writes the outputs
        self.path = RESUME_FOLDER / "train.pt"
        _check_resume_place(self.path)
        read = [part_digests(path, self.part, self.parts) for path in data]
        # each file's blocks, every rank's in turn: the whole file's, however many ranks read
        by_file = zip(*self.where.gather(read), strict=True)
        blocks = [digest for ranks in by_file for part in ranks for digest in part]
        self.fingerprint = run_fingerprint(params, blocks)
        self._saved_at = self._logged_at = time.monotonic()
        self._logged = False  # whether the live log holds this run's epochs so far
        # in a process group, a stop that cannot end its epoch (a peer failed) ends the rank
        self._stops = HeldStops(None if self.where.ranks is None else STOP_DEADLINE)

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        self._stops.release()
        if error is not None:
            self._restore_log()
        elif self.where.writes:
            self.path.unlink(missing_ok=True)
            self._kept_log.unlink(missing_ok=True)

    def resumed(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> TrainingState | None:
        """This run's resume point, whole (read_resume_point) and fit for the loop of `model`
        and `optimizer` (check_resumable); None when there is none. Any other is
        never used: one line says what is wrong with it, the writing rank removes it. In a
        process group the ranks may stand on machines that hold different points, or none (a
        node that replaced a lost one): the rank with the latest good one sends it to the
        others; none: the run starts from epoch 0."""
        check = partial(check_resumable, self.params, model, optimizer)
        state = self._own_resume_point(check)
        epochs = self.where.gather(state.epoch if state else 0)
        latest = max(range(len(epochs)), key=lambda rank: (epochs[rank], -rank))
        if not epochs[latest]:
            return None
        sent = self.where.broadcast(state, latest)
        if sent is None:  # cannot be: rank `latest` holds one
            return None
        check(sent)  # as this rank's own loop sees it
        self._say(f"resumed from epoch {sent.epoch} of {self.params.epochs}")
        return sent

    def _own_resume_point(self, check: Callable[[TrainingState], None]) -> TrainingState | None:
        try:
            saved = read_resume_point(self.path, self.fingerprint)
            if saved is None:
                return None
            state = state_of(saved)
            check(state)
        except (UnusableResumePoint, ValueError) as problem:
            if self.where.writes:
                print(f"{self.path}: {problem}: removed; training from epoch 0")
                self.path.unlink(missing_ok=True)
            return None
        return state

    def epochs(self, start: int, stop: int) -> Iterable[int]:
        if self.params.checkpoint_seconds:
            self._stops.hold()
        # disable=None: tqdm's own test, whether stderr is a terminal
        shown = None if self.where.writes else True
        return tqdm(range(start, stop), initial=start, total=stop, desc="train", disable=shown)

    def end_of_epoch(self, epoch: int, losses: Losses, state: Callable[[], TrainingState]) -> None:
        if epoch % self.params.log_every == 0:
            train, test = losses.train[-1], losses.test[-1]
            self._say(f"epoch {epoch:>5} | train_loss {train:.8f} | test_loss {test:.8f}")
        stop, due = self._stop_and_due(epoch)
        if due or stop:
            saved = state().__dict__
            self._saved_at = time.monotonic()
            if self.where.writes:
                save_resume_point(self.path, self.fingerprint, saved)
        if self.where.writes:
            self._log_so_far(losses)
        self._stops.stop_if_asked(stop)

    def resume_point_due(self, epoch: int, elapsed: bool) -> bool:
        """Whether this rank asks for a resume point after `epoch`: once checkpoint_seconds have
        passed (`elapsed`). A subclass may ask at other epochs (tests/pause_hook.py does, at an
        epoch a test names)."""
        return elapsed

    @property
    def held_stop(self) -> int:
        """The signal (SIGINT, SIGTERM) held to this epoch's end; 0 while none has come."""
        return self._stops.signum or 0

    def save(self, model: str | Path, result: FitResult) -> None:
        """The stage's outputs, by the writing rank: the checkpoint at `model`, and the train
        log's last rewrite (the whole run's), both written or neither. The train log has this
        one writer: the live rewrites during the run are its too."""
        if self.writes:
            with all_or_none():
                save_checkpoint(model, result.model)
                write_train_log(self.live_log, result.history)

    def _stop_and_due(self, epoch: int) -> tuple[int, bool]:
        """The signal that stops the run after this epoch (0: none) and whether a resume point
        is due, the same on every rank: a stop that came to any rank ends them all after this
        same epoch (by the largest signal number), with a resume point. No resume points
        (checkpoint_seconds: 0): no stop is held, and no rank needs to ask the others."""
        if not self.params.checkpoint_seconds:
            return 0, False
        elapsed = time.monotonic() - self._saved_at >= self.params.checkpoint_seconds
        asked = self.resume_point_due(epoch, elapsed)
        stop, due = self.where.largest([self.held_stop, asked])
        return stop, bool(due)

    def _say(self, line: str) -> None:
        if self.where.writes:
            tqdm.write(line)  # above the bar when there is one, plainly when there is not

    @property
    def _kept_log(self) -> Path:
        return self.path.with_name("train_log.before.csv")

    def _log_so_far(self, losses: Losses) -> None:
        """Rewrite the live train log with the epochs finished, if LIVE_LOG_SECONDS have
        passed; before the first rewrite, keep the log that was there."""
        if time.monotonic() - self._logged_at < LIVE_LOG_SECONDS:
            return
        self._logged_at = time.monotonic()
        # A kept log that is already there is the one from before a killed run: the live log
        # in its place is that run's, and the kept one stays the one to put back.
        if not self._logged and not self._kept_log.exists() and self.live_log.exists():
            write_bytes_atomic(self._kept_log, self.live_log.read_bytes())
        write_train_log(self.live_log, losses.log())
        self._logged = True

    def _restore_log(self) -> None:
        if not self._logged:
            return
        if self._kept_log.exists():
            os.replace(self._kept_log, self.live_log)
        else:
            self.live_log.unlink(missing_ok=True)
        self._logged = False


def _check_resume_place(path: Path) -> None:
    """One line, before any work, when the resume point cannot go where it goes: a file in the
    folder's place, a folder in the point's, or a folder that leads out of the repository (a
    link), where a point would be written through."""
    check_folder(path.parent)
    if path.exists() and not path.is_file():
        raise PipelineError(f"{path}: not a file, where the resume point goes; remove it")
    root = Path.cwd().resolve()
    if not path.parent.resolve().is_relative_to(root):
        raise PipelineError(
            f"{path.parent}: leads outside the repository ({path.parent.resolve()}); resume "
            "points are written inside it: remove the link"
        )
