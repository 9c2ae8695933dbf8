"""A line's loss and its gradient in one pass over the rows, for updates too large to be worth
autograd's many passes: what the loop's forward, loss and backward compute, for a model that
is a line (it gives `line_parameters()`: core/model.py) and a loss of LOSSES.

Autograd runs each op over every row of an update in turn (the product, the sum, the residual,
its absolute value, the loss's mean; then the sign, the product's two gradients), reading and
writing the whole update from memory a dozen times. This pass takes the rows a cache-sized
chunk at a time and runs every step on a chunk while it is in cache, with buffers allocated
once: the gradient of each loss is in closed form, r the residual x @ w + b - y,

    l1     loss |r|               gradient g = sign(r)
    mse    loss r^2               g = 2 r
    huber  loss g r - g^2 / 2     g = clamp(r, -1, 1)   (delta 1, torch's default)

and dL/dw = x^T g, dL/db = sum(g), each over the rows, scaled to their mean. An update of at
most FUSED_MIN_ROWS rows (the lesson's 40) runs the lesson's autograd ops instead, op for op.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from linreg.core import batches

# The most rows an update may have and still run the lesson's ops through autograd: below a few
# thousand rows a pass's fixed cost is more than autograd's, and the lesson's update (40 rows)
# keeps its bits.
FUSED_MIN_ROWS = 1 << 12
FUSED_LOSSES = ("l1", "mse", "huber")


class LinePass:
    """The fused loss and gradient of one line (`weight`, `bias`: its nn.Parameters, of any
    shapes with k and 1 values) under one loss, on the device of its parameters."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        loss: str,
        average: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.weight, self.bias, self.loss = weight, bias, loss
        self.average = average  # a gradient's mean over the ranks (the tensor itself: one)
        # the residual and dloss/dr of a chunk, allocated when first needed, as large as the
        # largest chunk so far (a model the pass never takes costs nothing)
        self.r = self.g = torch.empty(0, dtype=weight.dtype, device=weight.device)

    @classmethod
    def of(
        cls, model: nn.Module, loss: str, average: Callable[[torch.Tensor], torch.Tensor]
    ) -> LinePass | None:
        """The pass for `model` under `loss`, or None where the model is not a line or the loss
        is not one this pass knows: autograd trains it, whatever the update's size."""
        line_parameters = getattr(model, "line_parameters", None)
        if line_parameters is None or loss not in FUSED_LOSSES:
            return None
        weight, bias = line_parameters()
        return cls(weight, bias, loss, average)

    @staticmethod
    def takes(rows: int) -> bool:
        return rows > FUSED_MIN_ROWS

    def loss_and_gradient(self, x: torch.Tensor, y: torch.Tensor, share: float) -> torch.Tensor:
        """The mean loss over the rows of x (n, k) and y (n, 1), times `share`, with its
        gradient (averaged over the ranks) added to the parameters' .grad, as loss.backward()
        adds it."""
        sums = self._sums(x, y, gradient=True)  # (chunks, k + 2): loss, x^T g, sum(g)
        scale = share / len(x)
        total = sums.sum(dim=0) * scale
        gradient = self.average(total[1:] * (2.0 if self.loss == "mse" else 1.0))
        for parameter, part in ((self.weight, gradient[:-1]), (self.bias, gradient[-1:])):
            grad = part.view_as(parameter)
            parameter.grad = grad if parameter.grad is None else parameter.grad + grad
        return total[0]

    def mean_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss over the rows of x (n, k) and y (n, 1), with no gradient."""
        return self._sums(x, y, gradient=False).sum(dim=0)[0] / len(x)

    def _sums(self, x: torch.Tensor, y: torch.Tensor, gradient: bool) -> torch.Tensor:
        """Each chunk's loss sum and, with `gradient`, its x^T g and sum(g), in a row each: the
        rows are summed once at the end, in a fixed order."""
        features = x.shape[1]
        w, b = self.weight.detach().view(-1), self.bias.detach().view(-1)
        chunk_rows = batches.CHUNK_ROWS  # a chunk at a time, as autograd's pieces
        chunks = -(-len(x) // chunk_rows)
        sums = torch.empty(chunks, features + 2, dtype=w.dtype, device=w.device)
        if len(self.r) < (largest := min(len(x), chunk_rows)):
            with torch.inference_mode(False):  # the test loss's pass may be the first to need it
                self.r = torch.empty(largest, dtype=w.dtype, device=w.device)
                self.g = torch.empty_like(self.r)
        for chunk, start in enumerate(range(0, len(x), chunk_rows)):
            xc, yc = x[start : start + chunk_rows], y[start : start + chunk_rows].view(-1)
            rows = len(xc)
            r, g, out = self.r[:rows], self.g[:rows], sums[chunk]
            if features == 1:  # a product, not a (n, 1) @ (1,) matrix product: 8x faster
                torch.mul(xc.view(-1), w, out=r)
            else:
                torch.mv(xc, w, out=r)
            r.sub_(yc).add_(b)
            if self.loss == "l1":
                torch.sign(r, out=g)
                torch.dot(g, r, out=out[0])  # sign(r) r = |r|
            elif self.loss == "mse":
                g = r  # g = 2 r: the 2 scales the sums once, at the end
                torch.dot(r, r, out=out[0])
            else:
                torch.clamp(r, -1.0, 1.0, out=g)
                out[0] = torch.dot(g, r) - torch.dot(g, g) / 2
            if not gradient:
                continue
            if features == 1:
                torch.dot(xc.view(-1), g, out=out[1])
            else:
                torch.mv(xc.T, g, out=out[1:-1])
            torch.sum(g, dim=0, keepdim=True, out=out[-1:])
        return sums
