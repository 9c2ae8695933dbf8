"""The pipeline's two PNGs (the lesson's predictions picture, the loss curves) and the comparison's
two (the same, one colour per revision). No pyplot, no torch."""

from __future__ import annotations

import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure

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


def _sample_note(counts: Mapping[str, tuple[int, int]]) -> str | None:
    """'Seeded subsample: 5,000 of 8,000,000 train, ...' when any set was subsampled."""
    if all(shown == total for shown, total in counts.values()):
        return None
    parts = [f"{shown:,} of {total:,} {name}" for name, (shown, total) in counts.items()]
    return "Seeded subsample: " + ", ".join(parts) + " points"


def plot_predictions(train: Dataset, test: Dataset, y_pred, params: PlotParams) -> bytes:
    """Train data in blue, test data in green, predictions in red, as the lesson draws them;
    at most plot.max_points of each set, evenly spread, and the figure says so."""
    train_rows = spread_sample(len(train), params.max_points, params.seed)
    test_rows = spread_sample(len(test), params.max_points, params.seed)
    figure = Figure(figsize=(10, 7))
    axes = figure.add_subplot()
    axes.scatter(train.x[train_rows], train.y[train_rows], c="b", s=4, label="Training data")
    axes.scatter(test.x[test_rows], test.y[test_rows], c="g", s=4, label="Testing data")
    axes.scatter(test.x[test_rows], y_pred[test_rows], c="r", s=4, label="Predictions")
    note = _sample_note(
        {"train": (len(train_rows), len(train)), "test": (len(test_rows), len(test))}
    )
    if note:
        axes.set_title(note)
    axes.legend(prop={"size": 14})
    return render_png(figure, params.dpi)


def plot_loss_curve(epoch, train_loss, test_loss, dpi: int) -> bytes:
    """Train and test loss per epoch."""
    figure = Figure(figsize=(8, 5))
    axes = figure.add_subplot()
    axes.plot(epoch, train_loss, label="Train loss")
    axes.plot(epoch, test_loss, label="Test loss")
    axes.set_title("Training and test loss curves")
    axes.set_xlabel("Epochs")
    axes.set_ylabel("Loss")
    axes.legend()
    return render_png(figure, dpi)


# One colour per revision, base first; test data stays green as in the lesson's picture.
_REVISION_COLOURS = ("tab:orange", "tab:blue")


def loss_comparison_figure(logs: Mapping[str, Mapping[str, np.ndarray]]) -> Figure:
    """Each revision's train (solid) and test (dashed) loss; `logs` maps a revision's label to
    its epoch, train_loss and test_loss columns, base first."""
    figure = Figure(figsize=(8, 5))
    axes = figure.add_subplot()
    for (label, log), colour in zip(logs.items(), _REVISION_COLOURS, strict=True):
        axes.plot(log["epoch"], log["train_loss"], color=colour, label=f"{label}: train loss")
        axes.plot(log["epoch"], log["test_loss"], "--", color=colour, label=f"{label}: test loss")
    axes.set_title("Training and test loss curves")
    axes.set_xlabel("Epochs")
    axes.set_ylabel("Loss")
    axes.legend()
    return figure


def predictions_comparison_figure(
    predictions: Mapping[str, Mapping[str, np.ndarray]], params: PlotParams
) -> Figure:
    """Each revision's predictions over its test data; `predictions` maps a revision's label to
    its x, y and y_pred columns, base first. Test data the revisions share is drawn once. At
    most plot.max_points of each revision, evenly spread."""
    sampled = {}
    for label, columns in predictions.items():
        rows = spread_sample(len(columns["x"]), params.max_points, params.seed)
        sampled[label] = {name: values[rows] for name, values in columns.items()}
    figure = Figure(figsize=(10, 7))
    axes = figure.add_subplot()
    drawn: list[Mapping[str, np.ndarray]] = []
    for label, columns in sampled.items():
        if not any(_same_data(columns, other) for other in drawn):
            name = "Testing data" if not drawn else f"Testing data ({label})"
            marker = "o" if not drawn else "x"
            axes.scatter(columns["x"], columns["y"], c="g", s=16, marker=marker, label=name)
            drawn.append(columns)
    for (label, columns), colour in zip(sampled.items(), _REVISION_COLOURS, strict=True):
        axes.scatter(columns["x"], columns["y_pred"], c=colour, s=16, label=f"{label}: predictions")
    counts = {
        f"{label} test": (len(sampled[label]["x"]), len(columns["x"]))
        for label, columns in predictions.items()
    }
    axes.set_title(_sample_note(counts) or "Predictions on the test data")
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.legend(prop={"size": 14})
    return figure


def _same_data(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> bool:
    return np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"])
