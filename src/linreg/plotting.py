"""The pipeline's two pictures (the lesson's predictions picture, the loss curves) as matplotlib
Figures, and the PNG bytes of a figure. No pyplot, no torch."""

from __future__ import annotations

import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from linreg.artifacts import Predictions, TrainLog
from linreg.dataset import Dataset
from linreg.params import PlotParams


def render_png(figure: Figure, dpi: int) -> bytes:
    """A figure as PNG bytes."""
    buffer = io.BytesIO()
    # PNG rather than SVG/PDF: those embed a creation date; PNG bytes depend only on the pixels.
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def spread_sample(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of at most `size` of `n` rows: one seeded pick in each of `size` equal
    runs of rows, so the sample spreads evenly over them. All rows when n <= size."""
    if n <= size:
        return np.arange(n)
    edges = np.arange(size + 1, dtype=np.int64) * n // size  # exact: no float rounding
    offsets = np.random.default_rng(seed).random(size)
    return edges[:-1] + (offsets * np.diff(edges)).astype(np.int64)


def sample_note(counts: Mapping[str, tuple[int, int]]) -> str | None:
    """'Seeded subsample: 5,000 of 8,000,000 train, ...' when any set was subsampled."""
    if all(shown == total for shown, total in counts.values()):
        return None
    parts = [f"{shown:,} of {total:,} {name}" for name, (shown, total) in counts.items()]
    return "Seeded subsample: " + ", ".join(parts) + " points"


def predictions_figure(train: Dataset, predicted: Predictions, params: PlotParams) -> Figure:
    """Train data in blue, test data in green, predictions in red, as the lesson draws them;
    at most plot.max_points of each set, evenly spread, and the figure says so."""
    train_rows = spread_sample(len(train), params.max_points, params.seed)
    test_rows = spread_sample(len(predicted.x), params.max_points, params.seed)
    test_x = predicted.x[test_rows]
    figure = Figure(figsize=(10, 7))
    axes = figure.add_subplot()
    axes.scatter(train.x[train_rows], train.y[train_rows], c="b", s=4, label="Training data")
    axes.scatter(test_x, predicted.y[test_rows], c="g", s=4, label="Testing data")
    axes.scatter(test_x, predicted.y_pred[test_rows], c="r", s=4, label="Predictions")
    note = sample_note(
        {"train": (len(train_rows), len(train)), "test": (len(test_rows), len(predicted.x))}
    )
    if note:
        axes.set_title(note)
    axes.legend(prop={"size": 14})
    return figure


def loss_curve_figure(log: TrainLog) -> Figure:
    """Train and test loss per epoch."""
    figure, axes = loss_axes()
    axes.plot(log.epoch, log.train_loss, label="Train loss")
    axes.plot(log.epoch, log.test_loss, label="Test loss")
    axes.legend()
    return figure


def loss_axes() -> tuple[Figure, Axes]:
    """A titled, labelled loss-per-epoch picture to draw curves on (then add the legend)."""
    figure = Figure(figsize=(8, 5))
    axes = figure.add_subplot()
    axes.set_title("Training and test loss curves")
    axes.set_xlabel("Epochs")
    axes.set_ylabel("Loss")
    return figure, axes
