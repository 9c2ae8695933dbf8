"""The PNGs: valid, byte-stable, sized by dpi."""

from __future__ import annotations

import struct

import numpy as np

from linreg.plotting import plot_loss_curve, plot_predictions


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
