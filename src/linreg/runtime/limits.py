"""What this machine can hold and run, checked by the stage that needs it when it starts, not
where params are validated: a params file from a larger machine validates on a smaller one,
and only the stage that cannot run here says so."""

from __future__ import annotations

import os

from linreg.core.errors import PipelineError
from linreg.core.params import SyntheticParams


def require_cores(processes: int, option: str, cores: int | None = None) -> None:
    """A one-line error, before any rank starts, when `processes` exceed this machine's cores
    (`cores`; os.cpu_count() by default): more ranks only slow each other down, each holds
    its data, and a typo'd 1000 would fork until the machine refuses. (launcher.spawn itself
    forks as many as it is asked for: the tests run 3 ranks on 2 cores.)"""
    cores = cores or os.cpu_count() or 1
    if processes > cores:
        raise PipelineError(
            f"{option} = {processes}: more processes than this machine's {cores} cores; "
            f"use at most {cores}"
        )


# Peak memory of the hungriest stage per value of data (a row holds the features and y),
# rounded up. Generate, split in order, evaluate and plot stream a block at a time; train holds
# its rows, and a shuffled split all of them. At 10^7 rows of (x, y), above each stage's peak at
# 10^3 rows: train in mini-batches 427 MiB (45 bytes a row), a shuffled split 393 MiB (41). A
# standardised train set of k features adds float64 copies: 32 bytes a value bounds them all.
BYTES_PER_VALUE = 32


def require_memory(params: SyntheticParams, available: int | None = None) -> None:
    """A one-line error, before any work, when the rows `params` make would not fit in this
    machine's memory (`available` bytes; its physical memory by default): a step typed one
    digit short must not start a job that dies of memory an hour later. Checked when generate
    runs, not where params are validated."""
    row = BYTES_PER_VALUE * (len(params.weights) + 1)  # the features and y
    needed = params.span * row
    available = available or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not needed <= available:
        raise PipelineError(
            f"generate.step = {params.step!r}: makes {params.rows:,} rows, about "
            f"{_gib(needed)} in memory ({row} bytes a row); this machine has "
            f"{_gib(available)}: use a larger step or a shorter start..end range"
        )


def _gib(size: float) -> str:
    return f"{size / 2**30:,.1f} GiB"
