"""The watch on the process that started this one: an orphaned stage must not finish later and
overwrite the outputs of a newer run. Linux only; elsewhere a no-op."""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
from pathlib import Path

# prctl(2) option: the signal this process gets when the process that started it dies.
_PR_SET_PDEATHSIG = 1
# Shells that run a command line for another program (`sh -c CMD`), as DVC does for a stage's
# cmd. dash does not exec the last command, so the stage's parent is a shell that outlives DVC.
_SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "fish"})


def die_with_parent() -> None:
    """Have SIGTERM sent to this process when the program that started it (DVC, or the stage
    that forked this rank) dies, even by SIGKILL: an orphaned stage must not finish later and
    overwrite the outputs of a newer run. Linux only; elsewhere a no-op.

    The kernel signals the death of the parent itself; where that parent is only a `sh -c`
    between the program and this process, a thread also waits on the program beyond it."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
        return
    shell, launcher = None, parent
    while _is_command_shell(launcher):
        shell, launcher = launcher, _parent_of(launcher)
    if shell is not None and launcher > 1:  # not a shell already orphaned to init
        _terminate_when_gone(launcher, shell)


def _parent_of(pid: int) -> int:
    """The parent of process `pid` (0 if it is gone), from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(stat.rpartition(")")[2].split()[1])  # after "(comm)": state, then ppid


def _is_command_shell(pid: int) -> bool:
    """Whether process `pid` is a shell running a command line given with -c."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    name = os.path.basename(argv[0].decode(errors="replace")).lstrip("-")
    return name in _SHELLS and b"-c" in argv[1:]


def _terminate_when_gone(launcher: int, shell: int) -> None:
    """SIGTERM to this process once `launcher` (the parent of the `shell` above it) ends."""
    try:
        handle = os.pidfd_open(launcher)
    except ProcessLookupError:
        handle = None
    if handle is None or _parent_of(shell) != launcher:  # gone already, or its pid reused
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def wait_then_terminate() -> None:
        select.select([handle], [], [])  # a pidfd turns readable when its process ends
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait_then_terminate, name="launcher-watch", daemon=True).start()
