"""What every entry point shares: a user error is one line on stderr and a non-zero exit; an
interruption cleans up and dies by its signal; output paths stay inside the repository."""

from __future__ import annotations

import argparse
import errno
import gc
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from linreg.core.errors import PipelineError
from linreg.runtime.parent import die_with_parent
from linreg.runtime.signals import Terminated, die_by, raise_terminated


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
    previous = signal.signal(signal.SIGTERM, raise_terminated)
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
        die_by(signum)
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


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one PipelineError line, not its usage block."""

    def error(self, message: str) -> NoReturn:
        raise PipelineError(f"{self.prog}: {message} (--help lists the options)")


def parse_args(
    description: str | None,
    inputs: Sequence[str],
    outputs: Sequence[str],
    argv: Sequence[str] | None = None,
    reads_params: bool = True,
) -> argparse.Namespace:
    """A stage's command line: --params (for a stage that `reads_params`) plus one required
    --NAME PATH option per input and output (their names); dvc.yaml passes every path, once,
    and the stage's docstring (`description`) says what each one holds.

    An output outside the repository (the working directory, where DVC runs stages) is refused.
    """
    parser = ArgumentParser(description=description)
    if reads_params:
        parser.add_argument("--params", default="params.yaml", help="params file (params.yaml)")
    for name in inputs:
        parser.add_argument(f"--{name}", required=True, metavar="PATH", help="an input")
    for name in outputs:
        parser.add_argument(f"--{name}", required=True, metavar="PATH", help="an output to write")
    args = parser.parse_args(argv)
    root = Path.cwd().resolve()
    for name in outputs:
        path = getattr(args, name.replace("-", "_"))
        if not Path(path).resolve().is_relative_to(root):
            raise PipelineError(
                f"--{name} {path}: outside the repository ({root}); outputs are written inside it"
            )
    return args
