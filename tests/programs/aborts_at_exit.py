"""A stage whose native teardown would abort after its work (an exit handler that aborts, as
a library's can): it prints "done", and with `fails` ends with a PipelineError.

    python -m tests.programs.aborts_at_exit works|fails
"""

import atexit
import os
import sys

from linreg.core.errors import PipelineError
from linreg.runtime.cli import run_stage


def main() -> None:
    atexit.register(os.abort)
    print("done")
    if sys.argv[1] == "fails":
        raise PipelineError("data/raw.csv: no space left on the device")


if __name__ == "__main__":
    run_stage(main)
