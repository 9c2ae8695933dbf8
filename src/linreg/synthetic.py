"""Synthetic data on a straight line (or plane), as the lesson makes it. numpy only: no torch."""

from __future__ import annotations

import numpy as np

from linreg.dataset import Dataset, line_values
from linreg.params import SyntheticParams


def generate_dataset(params: SyntheticParams) -> Dataset:
    """y = weight . x + bias plus seeded Gaussian noise, float32, on `rows` rows.

    One feature (the lesson): x = arange(start, end, step), each x computed as start + i * step
    in float64 and rounded once to float32, so the same bits on every CPU. (torch.arange's
    float32 grid depends on the CPU's vector width; it differs from this one in the last bit
    of a few points, which moves the lesson's losses by about 1e-8.)

    k > 1 features: a grid would make them all equal, so each x is drawn uniformly from
    [start, end) and rounded to float32, by a generator seeded with `seed` (row by row, feature
    after feature); that generator then draws the noise.
    """
    weights = params.weights
    draws = np.random.default_rng(params.seed)
    if len(weights) == 1:
        grid = params.start + params.step * np.arange(params.rows, dtype=np.float64)
        x = grid.astype(np.float32)
        # float32 arithmetic with the scalars rounded to float32, as torch computes w * X + b
        y = np.float32(weights[0]) * x + np.float32(params.bias)
        features = x.reshape(-1, 1)
    else:
        shape = (params.rows, len(weights))
        features = draws.uniform(params.start, params.end, shape).astype(np.float32)
        y = line_values(weights, params.bias, features).astype(np.float32)
    if params.noise_std > 0:
        noise = draws.standard_normal(len(y), dtype=np.float32)
        y = y + np.float32(params.noise_std) * noise
    return Dataset(features, y, params.features)
