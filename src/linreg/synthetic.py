"""Synthetic data on a straight line, as the lesson makes it. numpy only: no torch import."""

from __future__ import annotations

import numpy as np

from linreg.dataset import Dataset
from linreg.params import GenerateParams


def generate_dataset(params: GenerateParams) -> Dataset:
    """y = weight * x + bias on x = arange(start, end, step), plus seeded Gaussian noise; float32.

    Each x is start + i * step in float64, rounded once to float32: the same bits on every CPU.
    (torch.arange's float32 grid depends on the CPU's vector width; it differs from this one in
    the last bit of a few points, which moves the lesson's losses by about 1e-8.)
    """
    x = (params.start + params.step * np.arange(params.rows, dtype=np.float64)).astype(np.float32)
    # float32 arithmetic with the scalars rounded to float32, as torch computes weight * X + bias
    y = np.float32(params.weight) * x + np.float32(params.bias)
    if params.noise_std > 0:
        noise = np.random.default_rng(params.seed).standard_normal(len(x), dtype=np.float32)
        y = y + np.float32(params.noise_std) * noise
    return Dataset(x, y)
