"""The pipeline's two pictures (the predictions, the loss curves) as matplotlib Figures, and the
PNG bytes of a figure. No pyplot, no torch."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, Self, TypeVar

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from linreg.core.dataset import Dataset
from linreg.core.params import PlotParams
from linreg.core.records import Predictions, TrainLog

# The lesson's picture's size, and the loss curve's: 1000 x 700 pixels at plot.dpi 100.
PICTURE_INCHES = (10, 7)


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


class _Rows(Protocol):
    def __len__(self) -> int: ...

    def rows(self, selection: np.ndarray) -> Self: ...


R = TypeVar("R", bound=_Rows)


def sample_of_blocks(
    blocks: Iterable[R], total: int, join: Callable[[list[R]], R], size: int, seed: int
) -> R:
    """The spread_sample of `total` rows that come a block at a time: memory holds a block and
    the sample, whatever the rows."""
    picks = spread_sample(total, size, seed)  # sorted
    sampled, start = [], 0
    for block in blocks:
        stop = start + len(block)
        lo, hi = np.searchsorted(picks, [start, stop])
        sampled.append(block.rows(picks[lo:hi] - start))
        start = stop
    return join(sampled)


def sample_note(counts: Mapping[str, tuple[int, int]]) -> str | None:
    """'Seeded subsample: 5,000 of 8,000,000 train, ...' when any set was subsampled."""
    if all(shown == total for shown, total in counts.values()):
        return None
    parts = [f"{shown:,} of {total:,} {name}" for name, (shown, total) in counts.items()]
    return "Seeded subsample: " + ", ".join(parts) + " points"


# Marker area in points², where the lesson's s=4 draws dots a reader can barely see
MARKER_AREA = 36


def predictions_figure(
    train: Dataset,
    predicted: Predictions,
    params: PlotParams,
    test_mae: float,
    totals: tuple[int, int] | None = None,
) -> Figure:
    """The lesson's picture for one feature (train data in blue, test data in green, predictions
    in red, against x), titled with the test MAE (reports/metrics.json's); for several,
    predicted against actual with the diagonal, and the residuals. At most plot.max_points of
    each set, evenly spread, and the figure says so. `totals`: the train and test row counts,
    when `train` and `predicted` are their samples (sample_of_blocks). The y axis spans the
    data's targets (and the predictions where they go beyond), so that revisions that trained
    on the same data share it in `dvc plots diff`."""
    train_total, test_total = totals or (len(train), len(predicted))
    if predicted.x.shape[1] > 1:
        return _predicted_against_actual(predicted, params, test_mae, test_total)
    train_rows = spread_sample(len(train), params.max_points, params.seed)
    test_rows = spread_sample(len(predicted.y), params.max_points, params.seed)
    test_x = predicted.x[test_rows, 0]
    figure = Figure(figsize=PICTURE_INCHES)
    axes = figure.add_subplot()
    axes.set_xlabel(predicted.data.features[0])
    axes.set_ylabel(predicted.data.target)
    train_x = train.x[train_rows, 0]
    axes.scatter(train_x, train.y[train_rows], c="b", s=MARKER_AREA, label="Training data")
    axes.scatter(test_x, predicted.y[test_rows], c="g", s=MARKER_AREA, label="Testing data")
    axes.scatter(test_x, predicted.y_pred[test_rows], c="r", s=MARKER_AREA, label="Predictions")
    drawn = np.concatenate([train.y[train_rows], predicted.y[test_rows]])
    axes.set_ylim(_span(drawn, predicted.y_pred[test_rows]))
    note = sample_note(
        {"train": (len(train_rows), train_total), "test": (len(test_rows), test_total)}
    )
    axes.set_title(f"Test MAE {test_mae:.4g}" + (f"\n{note}" if note else ""), fontsize=16)
    axes.legend(prop={"size": 14})
    return figure


def _span(data: np.ndarray, beyond: np.ndarray) -> tuple[float, float]:
    """The range of `data`, widened to hold `beyond` where it goes further, and 5 % of the
    data's range either side."""
    low, high = float(np.min(data)), float(np.max(data))
    margin = 0.05 * (high - low or abs(high) or 1.0)
    return min(low, float(np.min(beyond))) - margin, max(high, float(np.max(beyond))) + margin


def _predicted_against_actual(
    predicted: Predictions, params: PlotParams, test_mae: float, total: int
) -> Figure:
    """Left: each test row's prediction against its target, on the diagonal when exact. Right:
    the residuals (target - prediction) against the prediction, around zero when unbiased."""
    shown = predicted.rows(spread_sample(len(predicted.y), params.max_points, params.seed))
    target = predicted.data.target
    y, y_pred = shown.y.astype(np.float64), shown.y_pred.astype(np.float64)
    figure = Figure(figsize=(14, 6))
    left, right = figure.subplots(1, 2)
    left.scatter(y, y_pred, c="r", s=MARKER_AREA / 2, label="Predictions")
    ends = [min(y.min(), y_pred.min()), max(y.max(), y_pred.max())]
    left.plot(ends, ends, c="k", linewidth=1, label="Exact (predicted = actual)")
    left.set_xlabel(f"actual {target}")
    left.set_ylabel(f"predicted {target}")
    left.set_title(f"Test set: predicted against actual {target}")
    left.legend()
    right.scatter(y_pred, y - y_pred, c="g", s=MARKER_AREA / 2)
    right.axhline(0, c="k", linewidth=1)
    right.set_xlabel(f"predicted {target}")
    right.set_ylabel("residual (actual - predicted)")
    right.set_title("Residuals")
    note = sample_note({"test": (len(shown.y), total)})
    figure.suptitle(f"Test MAE {test_mae:.4g}" + (f"; {note}" if note else ""), fontsize=16)
    return figure


# The train.loss names as a loss axis says them: what each averages over the rows.
LOSS_LABELS = {
    "l1": "L1 loss: mean |y_pred - y|",
    "mse": "MSE loss: mean (y_pred - y)²",
    "huber": "Huber loss",
}


def loss_curve_figure(log: TrainLog, loss: str = "l1", standardized: bool = False) -> Figure:
    """Train and test loss per epoch, on a log axis (the first epochs' fall and the last ones'
    creep both show); `loss`: train.loss; `standardized`: the model trained on standardised
    data (train.standardize), so the losses are in those units, which the axis says."""
    figure, axes = loss_axes(loss, standardized)
    axes.plot(log.epoch, log.train_loss, label="Train loss")
    axes.plot(log.epoch, log.test_loss, label="Test loss")
    set_decades(axes, [log.train_loss, log.test_loss])
    axes.legend()
    return figure


def set_decades(axes: Axes, curves: Iterable[np.ndarray]) -> None:
    """The log axis from the power of ten below the curves' lowest positive value to the one
    above their highest: two revisions whose losses lie in the same decades get the same axis
    in `dvc plots diff`."""
    values = np.concatenate([np.asarray(curve, np.float64) for curve in curves])
    positive = values[np.isfinite(values) & (values > 0)]
    if len(positive):
        low, high = np.floor(np.log10(positive.min())), np.ceil(np.log10(positive.max()))
        axes.set_ylim(10**low, 10 ** max(high, low + 1))


def loss_axes(loss: str | None = None, standardized: bool = False) -> tuple[Figure, Axes]:
    """A titled, labelled loss-per-epoch picture, log loss axis, to draw curves on (then add the
    legend); `loss`: train.loss, None when the curves may be of several. The size of the
    predictions picture, so that a report's two pictures are one size."""
    figure = Figure(figsize=PICTURE_INCHES)
    axes = figure.add_subplot()
    axes.set_title("Training and test loss curves")
    axes.set_xlabel("Epoch")
    units = "standardised (train.standardize)" if standardized else "in y's units"
    squared = ", squared" if loss == "mse" else ""
    axes.set_ylabel(f"{LOSS_LABELS.get(loss or '', 'Loss')}, {units}{squared}; log scale")
    axes.set_yscale("log")
    # 0.04, not 4 x 10^-2; between powers of ten, 2, 3 and 5 of them say their values where
    # the axis spans at most two decades (the others, 6 to 9, would crowd under the next power)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: _minor_label(axes, value)))
    return figure, axes


def _minor_label(axes: Axes, value: float) -> str:
    low, high = axes.get_ylim()
    mantissa = round(value / 10 ** np.floor(np.log10(value)), 6)
    return f"{value:g}" if high <= 100 * low and mantissa in (2, 3, 5) else ""
