"""The PNGs: valid, byte-stable, sized by dpi; the comparison draws both revisions."""

from __future__ import annotations

import struct

import numpy as np

from linreg.plotting import (
    loss_comparison_figure,
    plot_loss_curve,
    plot_predictions,
    predictions_comparison_figure,
    render_png,
)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])  # IHDR width, height


def test_predictions_png_is_stable_and_sized_by_dpi(line):
    first = plot_predictions(line, line, line.y, dpi=50)
    assert first == plot_predictions(line, line, line.y, dpi=50)
    assert png_size(first) == (500, 350)  # figsize (10, 7) inches
    assert png_size(plot_predictions(line, line, line.y, dpi=100)) == (1000, 700)


def test_predictions_show_the_predictions(line):
    # predictions drawn in red: moving them changes the picture
    assert plot_predictions(line, line, line.y, 50) != plot_predictions(
        line, line, line.y + 0.5, 50
    )


def test_loss_curve_png(line):
    epoch = np.arange(10, dtype=np.float32)
    png = plot_loss_curve(epoch, 1 / (epoch + 1), 2 / (epoch + 1), dpi=40)
    assert png == plot_loss_curve(epoch, 1 / (epoch + 1), 2 / (epoch + 1), dpi=40)
    assert png_size(png) == (320, 200)


def log(scale: float) -> dict[str, np.ndarray]:
    epoch = np.arange(10, dtype=np.float32)
    return {"epoch": epoch, "train_loss": scale / (epoch + 1), "test_loss": 2 * scale / (epoch + 1)}


def test_loss_comparison_draws_both_revisions_curves():
    logs = {"main": log(1.0), "workspace": log(0.5)}
    lines = loss_comparison_figure(logs).axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "main: train loss",
        "main: test loss",
        "workspace: train loss",
        "workspace: test loss",
    ]
    for line, (label, column) in zip(
        lines, [(r, c) for r in logs for c in ("train_loss", "test_loss")], strict=True
    ):
        np.testing.assert_array_equal(line.get_ydata(), logs[label][column])
    assert lines[0].get_color() != lines[2].get_color()  # one colour per revision
    png = render_png(loss_comparison_figure(logs), dpi=40)
    assert png == render_png(loss_comparison_figure(logs), dpi=40)
    assert png_size(png) == (320, 200)


def predictions(line, shift: float) -> dict[str, np.ndarray]:
    return {"x": line.x, "y": line.y, "y_pred": line.y + shift}


def scatter_labels(figure) -> list[str]:
    return [collection.get_label() for collection in figure.axes[0].collections]


def test_predictions_comparison_draws_shared_test_data_once(line):
    figure = predictions_comparison_figure(
        {"main": predictions(line, 0.1), "workspace": predictions(line, 0.2)}
    )
    assert scatter_labels(figure) == [
        "Testing data",
        "main: predictions",
        "workspace: predictions",
    ]
    offsets = figure.axes[0].collections[2].get_offsets()
    np.testing.assert_allclose(offsets[:, 1], line.y + np.float32(0.2))


def test_predictions_comparison_draws_each_sides_test_data_when_they_differ(line):
    moved = {"x": line.x, "y": line.y + 1, "y_pred": line.y}
    figure = predictions_comparison_figure({"main": predictions(line, 0.1), "workspace": moved})
    assert scatter_labels(figure)[:2] == ["Testing data", "Testing data (workspace)"]
