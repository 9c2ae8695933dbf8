"""A stage launcher for the fuzz test: it imports what the stages import once, then, for each
request, forks a process that runs a stage script as `python stages/NAME.py ARGS` would (the
same `main`, entry point, exit status, stderr and signals), without paying ~1.6 s of imports
for every run.

Run in a project, with its src on PYTHONPATH. Requests come one JSON line at a time on stdin:
{"argv": ["stages/split.py", "--raw", ...], "stderr": "/path/for/its/stderr"}, and "cwd" to run
it in another copy of the project (the same library: each copy's is the same). For each, it
prints the started process's pid, then, once that process has ended, its exit status (negative:
the signal that ended it). The process leads a session of its own, so that its ranks can be
found and stopped with it.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback

# Everything the stages import, paid once here: a forked run finds it in sys.modules.
import linreg.core.evaluation
import linreg.core.plotting
import linreg.core.synthetic
import linreg.core.training
import linreg.io.artifacts
import linreg.io.checkpoint
import linreg.io.datasets
import linreg.io.external
import linreg.io.params
import linreg.runtime.launcher
import linreg.runtime.limits
import linreg.runtime.training_run  # noqa: F401


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_stage(request["argv"], request["stderr"], request.get("cwd"))  # never returns
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


def run_stage(argv: list[str], stderr: str, cwd: str | None) -> None:
    """In the forked process: run the script as the interpreter would, then exit with its
    status; a signal it dies by ends it before that."""
    code = 1
    try:
        os.setsid()
        if cwd is not None:
            os.chdir(cwd)
        quiet = os.open(os.devnull, os.O_RDWR)
        os.dup2(quiet, 0)  # not the request pipe
        os.dup2(quiet, 1)
        os.dup2(os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            code = exit.code or 0
        else:  # as the interpreter does: a message is printed, and the status is 1
            print(exit.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
