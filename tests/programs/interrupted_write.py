"""An entry point interrupted mid-write: SIGNAL arrives once write_bytes_atomic has written the
new bytes of OUT to its temporary file, before the rename; cli.run turns it into the one error
line and the exit by that signal.

    python -m tests.programs.interrupted_write SIGINT|SIGTERM OUT
"""

import os
import signal
import sys

from linreg.io.files import write_bytes_atomic
from linreg.runtime.cli import run


def main() -> None:
    name, out = sys.argv[1:]

    def stop(fd: int) -> None:  # the fsync before the rename
        os.kill(os.getpid(), getattr(signal, name))

    os.fsync = stop
    write_bytes_atomic(out, b"new")


if __name__ == "__main__":
    run(main)
