"""Two ranks that are stopped at the worst moments. Rank 0 fails, and is stopped (as torch stops
a failed rank's siblings) while torch formats its traceback: the attribute the formatting reads
first sends the SIGTERM. Rank 1 has finished its work and is stopped while its process winds
down (in a finalizer, which creates WINDING_DOWN to tell rank 0 to fail once it is there).

    python -m tests.programs.stopped_while_failing WINDING_DOWN
"""

import os
import signal
import sys
import time
from multiprocessing import util

from linreg.core.errors import PipelineError
from linreg.runtime.launcher import spawn


class Failure(Exception):
    @property
    def __notes__(self) -> None:  # type: ignore[override]
        os.kill(os.getpid(), signal.SIGTERM)


def wait_to_be_stopped(winding_down: str) -> None:
    open(winding_down, "w").close()
    while True:
        signal.pause()


def work(winding_down: str) -> None:
    if os.environ["RANK"] == "1":
        util.Finalize(None, wait_to_be_stopped, args=(winding_down,), exitpriority=0)
        return
    while not os.path.exists(winding_down):
        time.sleep(0.01)
    raise Failure


if __name__ == "__main__":
    try:
        spawn(2, work, sys.argv[1])
    except PipelineError as error:
        raise SystemExit(f"error: {error}") from None
