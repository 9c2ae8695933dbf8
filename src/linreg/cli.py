"""What every entry point shares: a user error is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence

from linreg.errors import PipelineError


def run(main: Callable[[], None]) -> None:
    """Call `main`; a PipelineError ends the process with its one line and exit status 1.

    Set LINREG_DEBUG=1 to see the traceback instead. Other exceptions are bugs: they propagate.
    """
    # A stage is a short-lived process holding about a million objects from torch's imports.
    # The collector's passes over them (during the lazy imports inside main, and once more at
    # exit) take ~0.7 s and free nothing; refcounting still frees everything main drops.
    gc.disable()
    try:
        main()
    except PipelineError as error:
        if os.environ.get("LINREG_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        gc.freeze()  # nothing left to collect: skip the final full pass at interpreter exit


def parse_args(
    description: str | None, paths: dict[str, str], argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """A stage's command line: --params plus one required --NAME option per entry of `paths`
    (the dict maps option name to help text); dvc.yaml passes every path, once."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (params.yaml)")
    for name, help_text in paths.items():
        parser.add_argument(f"--{name}", required=True, help=help_text)
    return parser.parse_args(argv)
