"""Stage plot: data, predictions, loss log -> the PNGs and the points `dvc plots` charts."""

import gc

gc.disable()  # before the imports: see linreg.runtime.cli.run

from functools import partial

from linreg.core import plotting
from linreg.core.dataset import Dataset
from linreg.core.records import Predictions
from linreg.io import artifacts
from linreg.io.datasets import read_blocks
from linreg.io.files import all_or_none, write_bytes_atomic
from linreg.io.params import load_params
from linreg.io.tables import count_rows
from linreg.runtime.cli import parse_args, run_stage


def main(argv: list[str] | None = None) -> None:
    inputs = ["train", "predictions", "train-log", "metrics"]
    args = parse_args(__doc__, inputs, ["predictions-png", "loss-png", "points"], argv)
    params, training = (everything := load_params(args.params)).plot, everything.train
    sample = partial(plotting.sample_of_blocks, size=params.max_points, seed=params.seed)
    train_rows, test_rows = count_rows(args.train), count_rows(args.predictions)
    train = sample(read_blocks(args.train, train_rows), train_rows, Dataset.joined)
    blocks = artifacts.read_prediction_blocks(args.predictions, test_rows)
    predicted = sample(blocks, test_rows, Predictions.joined)
    mae = artifacts.read_test_mae(args.metrics)  # the title says what the metrics say
    figure = plotting.predictions_figure(train, predicted, params, mae, (train_rows, test_rows))
    log = artifacts.read_train_log(args.train_log)
    curve = plotting.loss_curve_figure(log, training.loss, training.standardize)
    with all_or_none():
        write_bytes_atomic(args.predictions_png, plotting.render_png(figure, params.dpi))
        write_bytes_atomic(args.loss_png, plotting.render_png(curve, params.dpi))
        artifacts.write_predicted_vs_actual(args.points, predicted)


if __name__ == "__main__":
    run_stage(main)
