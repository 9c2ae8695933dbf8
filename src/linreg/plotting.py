"""The two PNGs: the lesson's predictions picture and the loss curves. No pyplot, no torch."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from linreg.dataset import Dataset


def _png(figure: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    # PNG rather than SVG/PDF: those embed a creation date; PNG bytes depend only on the pixels.
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot_predictions(train: Dataset, test: Dataset, y_pred, dpi: int) -> bytes:
    """Train data in blue, test data in green, predictions in red, as the lesson draws them."""
    figure = Figure(figsize=(10, 7))
    axes = figure.add_subplot()
    axes.scatter(train.x, train.y, c="b", s=4, label="Training data")
    axes.scatter(test.x, test.y, c="g", s=4, label="Testing data")
    axes.scatter(test.x, y_pred, c="r", s=4, label="Predictions")
    axes.legend(prop={"size": 14})
    return _png(figure, dpi)


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
    return _png(figure, dpi)
