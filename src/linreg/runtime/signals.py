"""SIGINT and SIGTERM: raised where the process is, so that `finally` blocks clean up, or held
to the end of a training epoch; and death by the signal once the stage has said its line."""

from __future__ import annotations

import os
import signal
import sys
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
    epoch in which one comes can end (and save a resume point) before the process stops."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def hold(self) -> None:
        if not self._previous:
            self._previous = {s: signal.signal(s, self._record) for s in _STOPS}

    def release(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def stop_if_asked(self) -> None:
        """Raise what the signal held would have raised: KeyboardInterrupt or Terminated, which
        the entry point turns into its one line and death by that signal."""
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is not None:
            raise Terminated(self.signum)


_STOPS = (signal.SIGINT, signal.SIGTERM)
