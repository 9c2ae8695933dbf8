"""Synthetic data on a straight line (or plane), as the lesson makes it, made a block of rows at
a time: memory stays a block's whatever the row count. numpy only: no torch."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from linreg.dataset import Dataset, line_values
from linreg.errors import PipelineError
from linreg.files import CSV_CHUNK_ROWS
from linreg.params import SyntheticParams

# Peak memory of the hungriest stage per value of data (a row holds the features and y),
# rounded up. Generate, split in order, evaluate and plot stream a block at a time; train holds
# its rows, and a shuffled split all of them. At 10^7 rows of (x, y), above each stage's peak at
# 10^3 rows: train in mini-batches 427 MiB (45 bytes a row), a shuffled split 393 MiB (41). A
# standardised train set of k features adds float64 copies: 32 bytes a value bounds them all.
BYTES_PER_VALUE = 32


def require_memory(params: SyntheticParams, available: int | None = None) -> None:
    """A one-line error, before any work, when the rows `params` make would not fit in this
    machine's memory (`available` bytes; its physical memory by default): a step typed one
    digit short must not start a job that dies of memory an hour later. A machine's limit, so
    checked here, when generate runs, not where params are validated."""
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


def generate_dataset(params: SyntheticParams) -> Dataset:
    """The whole dataset (generate_blocks, joined)."""
    return Dataset.joined(list(generate_blocks(params)))


def generate_blocks(params: SyntheticParams, rows: int = CSV_CHUNK_ROWS) -> Iterator[Dataset]:
    """y = weight . x + bias plus seeded Gaussian noise, float32, in blocks of `rows` rows; the
    values do not depend on the block size.

    One feature (the lesson): x = arange(start, end, step), each x computed as start + i * step
    in float64 and rounded once to float32, so the same bits on every CPU. (torch.arange's
    float32 grid depends on the CPU's vector width; it differs from this one in the last bit
    of a few points, which moves the lesson's losses by about 1e-8.)

    k > 1 features: a grid would make them all equal, so each x is drawn uniformly from
    [start, end) and rounded to float32, row by row, by a generator seeded with (seed, 1).
    The noise is drawn by a generator seeded with `seed`, as the lesson's is.
    """
    weights = params.weights
    noise_draws = np.random.default_rng(params.seed)
    feature_draws = np.random.default_rng([params.seed, 1])
    for start in range(0, params.rows, rows):
        stop = min(start + rows, params.rows)
        if len(weights) == 1:
            grid = params.start + params.step * np.arange(start, stop, dtype=np.float64)
            x = grid.astype(np.float32)
            # float32 arithmetic with the scalars rounded to float32, as torch computes w * X + b
            y = np.float32(weights[0]) * x + np.float32(params.bias)
            features = x.reshape(-1, 1)
        else:
            shape = (stop - start, len(weights))
            features = feature_draws.uniform(params.start, params.end, shape).astype(np.float32)
            y = line_values(weights, params.bias, features).astype(np.float32)
        if params.noise_std > 0:
            noise = noise_draws.standard_normal(len(y), dtype=np.float32)
            y = y + np.float32(params.noise_std) * noise
        yield Dataset(features, y, params.features)
