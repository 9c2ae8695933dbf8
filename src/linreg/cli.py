"""What every entry point shares: a user error is one line on stderr and a non-zero exit; an
interruption cleans up and dies by its signal; output paths stay inside the repository."""

from __future__ import annotations

import argparse
import ctypes
import errno
import gc
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from linreg.errors import PipelineError


class Terminated(BaseException):
    """SIGTERM, raised wherever the process is, so that `finally` blocks (an atomic write's
    temporary file) clean up as they do for Ctrl-C's KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def run(main: Callable[[], None]) -> None:
    """Call `main`; a PipelineError ends the process with its one line and exit status 1.

    Ctrl-C (SIGINT) or SIGTERM: one line, then death by that signal (the conventional status,
    130 or 143 in a shell). Set LINREG_DEBUG=1 to see the traceback of a PipelineError instead.
    Other exceptions are bugs: they propagate.
    """
    # A stage is a short-lived process holding about a million objects from torch's imports.
    # The collector's passes over them (during the imports, which is why each stage script
    # turns it off before them, during the lazy imports inside main, and once more at exit)
    # take about a second and free nothing; refcounting still frees everything main drops.
    gc.disable()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    die_with_parent()
    try:
        main()
    except (PipelineError, OSError) as error:
        line = str(error) if isinstance(error, PipelineError) else os_error_line(error)
        if line is None or os.environ.get("LINREG_DEBUG"):
            raise
        print(f"error: {line}", file=sys.stderr)
        raise SystemExit(1) from None
    except (KeyboardInterrupt, Terminated) as stop:
        signum = stop.signum if isinstance(stop, Terminated) else signal.SIGINT
        print(
            f"error: interrupted by {signal.Signals(signum).name}: no file was left half-written;"
            " run it again (dvc repro) to finish",
            file=sys.stderr,
        )
        _die_by(signum)
    finally:
        signal.signal(signal.SIGTERM, previous)
        gc.freeze()  # nothing left to collect: skip the final full pass at interpreter exit


def run_stage(main: Callable[[], None]) -> None:
    """run(main) as a stage's process, which then ends at once with run's exit status (0, or 1
    after the one line), skipping the interpreter's teardown. That teardown stops the native
    thread pools the stage's libraries keep (pyarrow's CSV reader starts one), and it can abort
    a process whose work is done and whose outputs are written: "terminate called without an
    active exception", exit 134 (apache/arrow#34314), seen here once after evaluate's one-line
    error on a full disk, and (likely the same) in a rank of bench/distributed.py. Every output
    is closed by then (atomic files); a signal still ends the process by that signal (run)."""
    try:
        run(main)
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# The OS errors a user causes or can fix, and what to do about each; any other is a bug.
_USER_OS_ERRORS = {
    errno.ENOSPC: "no space left on the device; free some space and run it again",
    errno.EDQUOT: "disk quota exceeded; free some space and run it again",
    errno.EACCES: "permission denied; make it (and its folder) writable or readable by you",
    errno.EPERM: "operation not permitted; check its owner and permissions",
    errno.EROFS: "read-only file system; run from a writable copy of the project",
    errno.EISDIR: "is a folder, not a file; remove or rename it",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}


def os_error_line(error: OSError) -> str | None:
    """One line naming the file and what to do, for an OS error a user can fix; else None."""
    advice = _USER_OS_ERRORS.get(error.errno or 0)
    if advice is None:
        return None
    where = error.filename if error.filename is not None else "a file of this stage"
    return f"{where}: {advice}"


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


def _die_by(signum: int) -> None:
    """Exit as the signal would have killed us, so that callers (DVC, a shell) see it."""
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    raise SystemExit(128 + signum)  # only if the signal did not end the process


def parse_args(
    description: str | None,
    inputs: dict[str, str],
    outputs: dict[str, str],
    argv: Sequence[str] | None = None,
    reads_params: bool = True,
) -> argparse.Namespace:
    """A stage's command line: --params (for a stage that `reads_params`) plus one required
    --NAME option per input and output (each dict maps option name to help text); dvc.yaml
    passes every path, once.

    An output outside the repository (the working directory, where DVC runs stages) is refused.
    """
    parser = argparse.ArgumentParser(description=description)
    if reads_params:
        parser.add_argument("--params", default="params.yaml", help="params file (params.yaml)")
    for name, help_text in (inputs | outputs).items():
        parser.add_argument(f"--{name}", required=True, help=help_text)
    args = parser.parse_args(argv)
    root = Path.cwd().resolve()
    for name in outputs:
        path = getattr(args, name.replace("-", "_"))
        if not Path(path).resolve().is_relative_to(root):
            raise PipelineError(
                f"--{name} {path}: outside the repository ({root}); outputs are written inside it"
            )
    return args
