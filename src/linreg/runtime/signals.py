"""SIGINT and SIGTERM: raised where the process is, so that `finally` blocks clean up, or held
to the end of a training epoch; and death by the signal once the stage has said its line."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any


class Terminated(BaseException):
    """SIGTERM, raised wherever the process is, so that `finally` blocks (an atomic write's
    temporary file) clean up as they do for Ctrl-C's KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def die_by(signum: int) -> None:
    """Exit as the signal would have killed us, so that callers (DVC, a shell) see it."""
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    raise SystemExit(128 + signum)  # only if the signal did not end the process


class HeldStops:
    """SIGINT and SIGTERM, held from hold() until release(): recorded, not raised, so that the
    epoch in which one comes can end (and save a resume point) before the process stops.

    `deadline`: seconds after the first stop within which the epoch must end, else the process
    dies by the signal where it is, saving nothing: a rank of a process group waiting for a
    peer that has failed must not hang. From a thread of its own, since the main thread may be
    blocked in a collective (which releases the GIL)."""

    def __init__(self, deadline: float | None = None) -> None:
        self.signum: int | None = None
        self.deadline = deadline
        self._previous: dict[int, Any] = {}
        self._timer: threading.Timer | None = None

    def hold(self) -> None:
        if not self._previous:
            self._previous = {s: signal.signal(s, self._record) for s in _STOPS}

    def release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            return  # the first stop is the one to end by
        self.signum = signum
        if self.deadline is not None:
            self._timer = threading.Timer(self.deadline, _die_now, (signum,))
            self._timer.daemon = True
            self._timer.start()

    def stop_if_asked(self, signum: int | None = None) -> None:
        """Raise what the signal held (or `signum`: another rank's) would have raised:
        KeyboardInterrupt or Terminated, which the entry point turns into its one line and
        death by that signal."""
        signum = signum or self.signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if signum is not None:
            raise Terminated(signum)


def _die_now(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_STOPS = (signal.SIGINT, signal.SIGTERM)
