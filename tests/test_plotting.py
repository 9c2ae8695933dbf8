"""The PNGs: valid, byte-stable, sized by dpi; the comparison draws both revisions."""

from __future__ import annotations

import itertools

import numpy as np

from linreg.core.dataset import Dataset
from linreg.core.params import PlotParams
from linreg.core.plotting import (
    loss_curve_figure,
    predictions_figure,
    render_png,
    sample_of_blocks,
    spread_sample,
)
from linreg.core.records import Predictions, TrainLog
from linreg.experiments.figures import loss_comparison_figure, predictions_comparison_figure

from .helpers import png_size


def plot_params(dpi: int = 50, max_points: int = 5000, seed: int = 0) -> PlotParams:
    return PlotParams(dpi=dpi, max_points=max_points, seed=seed)


def predicted(data: Dataset, shift: float = 0.0) -> Predictions:
    return Predictions(data, data.y + np.float32(shift))


def mae_of(test: Predictions) -> float:
    return float(np.mean(np.abs(test.y.astype(np.float64) - test.y_pred)))


def picture(train: Dataset, test: Predictions, params: PlotParams, totals=None):
    """The predictions picture, titled with the MAE of `test` (metrics.json's, in the stage)."""
    return predictions_figure(train, test, params, mae_of(test), totals)


def predictions_png(line: Dataset, params: PlotParams, shift: float = 0.0) -> bytes:
    return render_png(picture(line, predicted(line, shift), params), params.dpi)


def test_predictions_png_is_stable_and_sized_by_dpi(line):
    first = predictions_png(line, plot_params(dpi=50))
    assert first == predictions_png(line, plot_params(dpi=50))
    assert png_size(first) == (500, 350)  # figsize (10, 7) inches
    assert png_size(predictions_png(line, plot_params(dpi=100))) == (1000, 700)


def test_predictions_show_the_predictions(line):
    # predictions drawn in red: moving them changes the picture
    assert predictions_png(line, plot_params()) != predictions_png(line, plot_params(), 0.5)


def log(scale: float) -> TrainLog:
    epoch = np.arange(10, dtype=np.float32)
    return TrainLog(epoch, scale / (epoch + 1), 2 * scale / (epoch + 1))


def test_loss_curve_png():
    png = render_png(loss_curve_figure(log(1.0)), dpi=40)
    assert png == render_png(loss_curve_figure(log(1.0)), dpi=40)
    assert png_size(png) == (400, 280)  # figsize (10, 7) inches, as the predictions picture


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
        np.testing.assert_array_equal(line.get_ydata(), getattr(logs[label], column))
    assert lines[0].get_color() != lines[2].get_color()  # one colour per revision
    png = render_png(loss_comparison_figure(logs), dpi=40)
    assert png == render_png(loss_comparison_figure(logs), dpi=40)
    assert png_size(png) == (400, 280)  # figsize (10, 7) inches, as the predictions picture


def scatter_labels(figure) -> list[str]:
    return [collection.get_label() for collection in figure.axes[0].collections]


def test_predictions_comparison_draws_shared_test_data_once(line):
    figure = predictions_comparison_figure(
        {"main": predicted(line, 0.1), "workspace": predicted(line, 0.2)}, plot_params()
    )
    assert scatter_labels(figure) == [
        "Testing data",
        "main: predictions",
        "workspace: predictions",
    ]
    offsets = figure.axes[0].collections[2].get_offsets()
    np.testing.assert_allclose(offsets[:, 1], line.y + np.float32(0.2))


def test_predictions_comparison_draws_each_sides_test_data_when_they_differ(line):
    moved = Predictions(Dataset(line.x, line.y + 1), line.y)
    figure = predictions_comparison_figure(
        {"main": predicted(line, 0.1), "workspace": moved}, plot_params()
    )
    assert scatter_labels(figure)[:2] == ["Testing data", "Testing data (workspace)"]


def test_spread_sample_is_seeded_sorted_and_one_per_equal_run():
    rows = spread_sample(1_000_003, 1000, seed=7)
    assert np.array_equal(rows, spread_sample(1_000_003, 1000, seed=7))
    assert not np.array_equal(rows, spread_sample(1_000_003, 1000, seed=8))
    assert len(rows) == 1000
    assert np.all(np.diff(rows) > 0)
    runs = np.arange(1001) * 1_000_003 // 1000  # each pick lies in its own run of rows
    assert np.all((runs[:-1] <= rows) & (rows < runs[1:]))


def test_spread_sample_keeps_every_row_of_a_small_set():
    assert np.array_equal(spread_sample(50, 5000, seed=0), np.arange(50))


def test_a_big_data_set_is_drawn_as_a_sample_and_the_figure_says_so():
    x = np.arange(100_000, dtype=np.float32) / 100_000
    big = Dataset(x.reshape(-1, 1), 2 * x)
    (axes,) = picture(big, predicted(big), plot_params(max_points=500)).axes
    assert [len(c.get_offsets()) for c in axes.collections] == [500, 500, 500]
    assert axes.get_title().splitlines()[1] == (
        "Seeded subsample: 500 of 100,000 train, 500 of 100,000 test points"
    )


def test_a_small_data_set_is_drawn_whole_with_its_test_mae_alone(line):
    test = predicted(line, 0.25)
    (axes,) = picture(line, test, plot_params()).axes
    assert [len(c.get_offsets()) for c in axes.collections] == [len(line)] * 3
    assert axes.get_title() == f"Test MAE {mae_of(test):.4g}"


def test_a_sample_of_blocks_is_the_sample_of_the_whole():
    x = np.arange(10_007, dtype=np.float32) / 10_007
    data = Dataset(x.reshape(-1, 1), 2 * x)
    blocks = [data.rows(slice(start, start + 333)) for start in range(0, len(data), 333)]
    sample = sample_of_blocks(blocks, len(data), Dataset.joined, 500, seed=3)
    rows = spread_sample(len(data), 500, seed=3)
    assert sample.x.tobytes() == data.x[rows].tobytes()
    assert sample.y.tobytes() == data.y[rows].tobytes()


def test_the_picture_of_samples_is_the_picture_of_the_whole():
    x = np.arange(20_000, dtype=np.float32) / 20_000
    big = Dataset(x.reshape(-1, 1), 2 * x)
    params = plot_params(max_points=500)
    whole = render_png(picture(big, predicted(big), params), params.dpi)
    blocks = [big.rows(slice(start, start + 999)) for start in range(0, len(big), 999)]
    train = sample_of_blocks(blocks, len(big), Dataset.joined, 500, 0)
    test = sample_of_blocks(map(predicted, blocks), len(big), Predictions.joined, 500, 0)
    sampled = predictions_figure(train, test, params, mae_of(predicted(big)), (len(big), len(big)))
    assert render_png(sampled, params.dpi) == whole


def test_the_loss_curve_is_on_a_log_axis_that_names_the_loss_and_its_units():
    (axes,) = loss_curve_figure(log(1.0)).axes
    assert axes.get_yscale() == "log"
    assert (axes.get_xlabel(), axes.get_ylabel()) == (
        "Epoch",
        "L1 loss: mean |y_pred - y|, in y's units; log scale",
    )
    (standardised,) = loss_curve_figure(log(1.0), "mse", standardized=True).axes
    assert standardised.get_ylabel() == (
        "MSE loss: mean (y_pred - y)², standardised (train.standardize), squared; log scale"
    )


def test_the_lessons_picture_names_its_axes(line):
    (axes,) = picture(line, predicted(line), plot_params()).axes
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("x", "y")


def test_a_reports_two_pictures_are_one_size(line):
    params = plot_params()
    loss = render_png(loss_comparison_figure({"main": log(1.0), "w": log(0.5)}), params.dpi)
    both = {"main": predicted(line), "w": predicted(line, 0.5)}
    predictions = render_png(predictions_comparison_figure(both, params), params.dpi)
    assert png_size(loss) == png_size(predictions) == png_size(predictions_png(line, params))


def test_predictions_of_the_same_data_share_the_y_axis(line):
    """Two revisions' pictures of one data set, predictions within its range: one y axis."""
    exact, shrunk = (Predictions(line, line.y * scale) for scale in (1.0, 0.9))
    one, other = (picture(line, test, plot_params()).axes[0] for test in (exact, shrunk))
    assert one.get_ylim() == other.get_ylim()
    beyond = picture(line, predicted(line, 10.0), plot_params()).axes[0]
    assert beyond.get_ylim()[1] > 10 + float(line.y.max())  # nothing drawn is clipped


def test_the_loss_axis_spans_whole_decades_and_its_labels_never_crowd():
    (axes,) = loss_curve_figure(log(0.3)).axes  # losses from 0.03 to 0.6
    axes.figure.canvas.draw()
    assert axes.get_ylim() == (0.01, 1.0)
    (other,) = loss_curve_figure(log(0.25)).axes
    assert other.get_ylim() == axes.get_ylim()
    labels = [t for t in axes.yaxis.get_ticklabels(minor=True) if t.get_text()]
    mantissas = {
        round(float(t.get_text()) / 10 ** np.floor(np.log10(float(t.get_text())))) for t in labels
    }
    assert mantissas == {2, 3, 5}
    boxes = sorted(
        t.get_window_extent().y0 for t in [*labels, *axes.yaxis.get_ticklabels()] if t.get_text()
    )
    heights = labels[0].get_window_extent().height
    assert all(b - a > heights for a, b in itertools.pairwise(boxes))  # no overlap
