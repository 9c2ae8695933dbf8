"""The yardstick the training benchmarks hold `fit` against: the lesson's loop and nothing
else (forward, L1 loss, zero_grad, backward, SGD step), over contiguous slices of data already
where it runs. No shuffle, no logging, no history: a bound, not a training run."""

from __future__ import annotations

import torch


def bare_loop(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int, lr: float, seed: int
) -> None:
    """`epochs` passes over x, y (n, 1), in slices of batch_size rows (0: the whole set)."""
    torch.manual_seed(seed)
    weight = torch.nn.Parameter(torch.randn(1, device=x.device))
    bias = torch.nn.Parameter(torch.randn(1, device=x.device))
    optimizer = torch.optim.SGD([weight, bias], lr=lr)
    loss_fn = torch.nn.L1Loss()
    step = batch_size or len(x)
    for _ in range(epochs):
        for start in range(0, len(x), step):
            loss = loss_fn(weight * x[start : start + step] + bias, y[start : start + step])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
