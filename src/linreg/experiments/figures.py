"""The comparison's two pictures: the pipeline's own, with one colour per revision."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from linreg.artifacts import Predictions, TrainLog
from linreg.params import PlotParams
from linreg.plotting import loss_axes, sample_note, spread_sample

# One colour per revision, base first; test data stays green as in the lesson's picture.
_REVISION_COLOURS = ("tab:orange", "tab:blue")


def loss_comparison_figure(logs: Mapping[str, TrainLog]) -> Figure:
    """Each revision's train (solid) and test (dashed) loss; `logs` maps a revision's label to
    its train log, base first."""
    figure, axes = loss_axes()
    for (label, log), colour in zip(logs.items(), _REVISION_COLOURS, strict=True):
        axes.plot(log.epoch, log.train_loss, color=colour, label=f"{label}: train loss")
        axes.plot(log.epoch, log.test_loss, "--", color=colour, label=f"{label}: test loss")
    axes.legend()
    return figure


def predictions_comparison_figure(
    predictions: Mapping[str, Predictions], params: PlotParams
) -> Figure:
    """Each revision's predictions over its test data; `predictions` maps a revision's label to
    its predictions, base first. Test data the revisions share is drawn once. At most
    plot.max_points of each revision, evenly spread."""
    sampled = {}
    for label, predicted in predictions.items():
        rows = spread_sample(len(predicted.x), params.max_points, params.seed)
        sampled[label] = Predictions(predicted.x[rows], predicted.y[rows], predicted.y_pred[rows])
    figure = Figure(figsize=(10, 7))
    axes = figure.add_subplot()
    drawn: list[Predictions] = []
    for label, predicted in sampled.items():
        if not any(_same_data(predicted, other) for other in drawn):
            name = "Testing data" if not drawn else f"Testing data ({label})"
            marker = "o" if not drawn else "x"
            axes.scatter(predicted.x, predicted.y, c="g", s=16, marker=marker, label=name)
            drawn.append(predicted)
    for (label, predicted), colour in zip(sampled.items(), _REVISION_COLOURS, strict=True):
        axes.scatter(predicted.x, predicted.y_pred, c=colour, s=16, label=f"{label}: predictions")
    counts = {
        f"{label} test": (len(sampled[label].x), len(predicted.x))
        for label, predicted in predictions.items()
    }
    axes.set_title(sample_note(counts) or "Predictions on the test data")
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.legend(prop={"size": 14})
    return figure


def _same_data(a: Predictions, b: Predictions) -> bool:
    return np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
