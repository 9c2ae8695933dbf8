"""Synthetic data on a straight line (or plane), as the lesson makes it, made a block of rows at
a time: memory stays a block's whatever the row count. numpy only: no torch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from linreg.core.dataset import BLOCK_ROWS, Dataset, line_values
from linreg.core.params import SyntheticParams


def generate_blocks(params: SyntheticParams, rows: int = BLOCK_ROWS) -> Iterator[Dataset]:
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
