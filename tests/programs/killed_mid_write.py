"""A process SIGKILLed once write_bytes_atomic has written the new bytes of OUT to its
temporary file, before the rename: what a machine that goes away leaves behind.

    python -m tests.programs.killed_mid_write OUT
"""

import os
import signal
import sys

from linreg.io.files import write_bytes_atomic

if __name__ == "__main__":
    os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # the fsync before the rename
    write_bytes_atomic(sys.argv[1], b"new")
