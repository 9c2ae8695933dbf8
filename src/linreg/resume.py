"""Resume points: what a training run needs to continue bit for bit after it was stopped or
killed, and the live train log a person can watch while it runs.

A resume point is saved at the end of an epoch once train.checkpoint_seconds have passed since
the last one, and, for a single process, at the end of the epoch in which SIGINT or SIGTERM
came. It belongs to one run: its fingerprint covers the train params (but checkpoint_seconds
and log_every), the bytes of the data, the library's code and the world size. The train stage
keeps it in RESUME_FOLDER, which git and DVC ignore; DVC removes a stage's outputs before it
runs the stage, so a resume point cannot be one of them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import signal
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from linreg.artifacts import TrainLog, write_train_log
from linreg.cli import Terminated
from linreg.distributed import Placement
from linreg.files import write_bytes_atomic
from linreg.params import TrainParams

RESUME_FOLDER = Path(".resume")
# Seconds between two rewrites of the live train log.
LIVE_LOG_SECONDS = 2.0
# train params that change neither what is computed nor in which order
_NOT_IN_FINGERPRINT = {"checkpoint_seconds", "log_every"}


def run_fingerprint(params: TrainParams, data: Sequence[bytes], world_size: int) -> str:
    """What makes two runs the same run: the params that shape the computation, the data (the
    sha256 of the bytes each rank read: files.file_digest), the code of every linreg module
    loaded, and the number of ranks."""
    digest = hashlib.sha256()
    shaping = params.model_dump(exclude=_NOT_IN_FINGERPRINT)
    digest.update(json.dumps([shaping, world_size], sort_keys=True).encode())
    for data_digest in data:
        digest.update(data_digest)
    for name in sorted(name for name in sys.modules if name.split(".")[0] == "linreg"):
        source = getattr(sys.modules[name], "__file__", None)
        if source:
            digest.update(name.encode() + Path(source).read_bytes())
    return digest.hexdigest()


@dataclass
class TrainingState:
    """Everything the loop carries from one epoch to the next."""

    epoch: int  # epochs finished
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    batch_orders: list[torch.Tensor]  # each rank's batch-order generator state, by rank
    train_loss: list[float]  # float32 values, one per finished epoch
    test_loss: list[float]


@dataclass
class Checkpoints:
    """The resume point of one run, and the live train log, for `fit` to keep up to date.

    `every`: seconds between resume points (0: none); `live_log`: where to rewrite the train
    log so far, every LIVE_LOG_SECONDS at most (None: only the final log is written). The log
    that was there before is kept beside the resume point until the run ends: a run that
    stops or fails puts it back (restore_log), one that finishes removes it (clear)."""

    path: Path
    fingerprint: str
    every: float
    live_log: Path | None = None
    _saved_at: float = field(default_factory=time.monotonic)
    _logged_at: float = field(default_factory=time.monotonic)
    _logged: bool = False  # whether the live log holds this run's epochs so far

    @property
    def saving(self) -> bool:
        return self.every > 0

    def load(self, removes_stale: bool) -> TrainingState | None:
        """This run's resume point; None when there is none. One of another run (or one that
        cannot be read) is never used; the writing rank (`removes_stale`) removes it."""
        try:
            saved = torch.load(self.path, weights_only=True)
        except FileNotFoundError:
            return None
        except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile):
            saved = None
        if isinstance(saved, dict) and saved.get("fingerprint") == self.fingerprint:
            return TrainingState(**saved["state"])
        if removes_stale:
            print(f"{self.path}: a resume point of another run (params, data or code): removed")
            self.path.unlink(missing_ok=True)
        return None

    def due(self, stopping: bool, where: Placement) -> bool:
        """Whether to save a resume point now, at the end of an epoch: in a process group every
        rank gets the same answer (yes when any rank's clock or stop says so)."""
        if not self.saving:
            return False
        now = time.monotonic() - self._saved_at >= self.every
        if where.ranks is None:
            return now or stopping
        flag = torch.tensor([float(now or stopping)], device=where.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def save(self, state: TrainingState, writes: bool) -> None:
        """Write `state` (from the writing rank) atomically: a kill mid-write leaves the
        previous resume point as it was."""
        self._saved_at = time.monotonic()
        if not writes:
            return
        buffer = io.BytesIO()
        torch.save({"fingerprint": self.fingerprint, "state": state.__dict__}, buffer)
        write_bytes_atomic(self.path, buffer.getvalue())

    @property
    def _kept_log(self) -> Path:
        return self.path.with_name("train_log.before.csv")

    def log_so_far(self, train_loss: Sequence[float], test_loss: Sequence[float]) -> None:
        """Rewrite the live train log with the epochs finished, if LIVE_LOG_SECONDS have
        passed; before the first rewrite, keep the log that was there."""
        if self.live_log is None or time.monotonic() - self._logged_at < LIVE_LOG_SECONDS:
            return
        self._logged_at = time.monotonic()
        # A kept log that is already there is the one from before a killed run: the live log
        # in its place is that run's, and the kept one stays the one to put back.
        if not self._logged and not self._kept_log.exists() and self.live_log.exists():
            write_bytes_atomic(self._kept_log, self.live_log.read_bytes())
        write_train_log(self.live_log, TrainLog.of(train_loss, test_loss))
        self._logged = True

    def restore_log(self) -> None:
        """After a run that stops or fails: the train log as it was before the run (none,
        when DVC had removed it), whether or not the live log was written."""
        if not self._logged or self.live_log is None:
            return
        if self._kept_log.exists():
            os.replace(self._kept_log, self.live_log)
        else:
            self.live_log.unlink(missing_ok=True)
        self._logged = False

    def clear(self) -> None:
        """After a run that finished: its resume point and the log kept from before it go."""
        self.path.unlink(missing_ok=True)
        self._kept_log.unlink(missing_ok=True)


class Stop:
    """SIGINT or SIGTERM, held until the end of the epoch in which it came."""

    signum: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def now(self) -> BaseException:
        """The exception the entry point turns into its one line and death by the signal."""
        return KeyboardInterrupt() if self.signum == signal.SIGINT else Terminated(self.signum or 0)


@contextmanager
def held_stops(hold: bool) -> Iterator[Stop]:
    """While inside, SIGINT and SIGTERM are recorded in the Stop, not raised (when `hold`)."""
    stop = Stop()
    if not hold:
        yield stop
        return
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
