"""The comparison's two pictures: the pipeline's own, with one colour per revision."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from linreg.core.params import PlotParams
from linreg.core.plotting import (
    PICTURE_INCHES,
    loss_axes,
    sample_note,
    set_decades,
    spread_sample,
)
from linreg.core.records import Predictions, TrainLog
from linreg.experiments.report import REVISION_COLOURS

# One colour per revision, base first (the Mermaid charts' too); test data stays green as in
# the lesson's picture.
_REVISION_COLOURS = tuple(REVISION_COLOURS)


def loss_comparison_figure(logs: Mapping[str, TrainLog]) -> Figure:
    """Each revision's train (solid) and test (dashed) loss; `logs` maps a revision's label to
    its train log, base first."""
    figure, axes = loss_axes()
    for (label, log), colour in zip(logs.items(), _REVISION_COLOURS, strict=True):
        axes.plot(log.epoch, log.train_loss, color=colour, label=f"{label}: train loss")
        axes.plot(log.epoch, log.test_loss, "--", color=colour, label=f"{label}: test loss")
    set_decades(axes, [curve for log in logs.values() for curve in (log.train_loss, log.test_loss)])
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
        sampled[label] = predicted.rows(
            spread_sample(len(predicted.y), params.max_points, params.seed)
        )
    one_feature = all(predicted.x.shape[1] == 1 for predicted in predictions.values())
    figure = Figure(figsize=PICTURE_INCHES)
    axes = figure.add_subplot()
    drawn: list[Predictions] = []
    for label, predicted in sampled.items():
        if not any(_same_data(predicted, other) for other in drawn):
            name = "Testing data" if not drawn else f"Testing data ({label})"
            marker = "o" if not drawn else "x"
            if one_feature:
                axes.scatter(predicted.x[:, 0], predicted.y, c="g", s=16, marker=marker, label=name)
            drawn.append(predicted)
    if not one_feature:  # several features: predicted against actual, exact on the diagonal
        ends = [min(p.y.min() for p in drawn), max(p.y.max() for p in drawn)]
        axes.plot(ends, ends, c="g", linewidth=1, label="Exact (predicted = actual)")
    for (label, predicted), colour in zip(sampled.items(), _REVISION_COLOURS, strict=True):
        across = predicted.x[:, 0] if one_feature else predicted.y
        axes.scatter(across, predicted.y_pred, c=colour, s=16, label=f"{label}: predictions")
    counts = {
        f"{label} test": (len(sampled[label].y), len(predicted.y))
        for label, predicted in predictions.items()
    }
    axes.set_title(sample_note(counts) or "Predictions on the test data")
    target = next(iter(predictions.values())).data.target
    axes.set_xlabel("x" if one_feature else f"actual {target}")
    axes.set_ylabel(target if one_feature else f"predicted {target}")
    axes.legend(prop={"size": 14})
    return figure


def _same_data(a: Predictions, b: Predictions) -> bool:
    return a.x.shape == b.x.shape and np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
