"""Stage plot: data, predictions and loss log -> reports/predictions.png, reports/loss_curve.png.
The data is read a block of rows at a time, keeping only the points drawn."""

import gc

gc.disable()  # before the imports: see linreg.runtime.cli.run

from linreg.core.dataset import Dataset
from linreg.core.plotting import loss_curve_figure, predictions_figure, render_png, sample_of_blocks
from linreg.core.records import Predictions
from linreg.io.artifacts import read_prediction_blocks, read_train_log
from linreg.io.datasets import read_blocks
from linreg.io.files import all_or_none, write_bytes_atomic
from linreg.io.params import load_params
from linreg.io.tables import count_rows
from linreg.runtime.cli import parse_args, run_stage


def main(argv: list[str] | None = None) -> None:
    inputs, outputs = ["train", "predictions", "train-log"], ["predictions-png", "loss-png"]
    args = parse_args(__doc__, inputs, outputs, argv)
    everything = load_params(args.params)
    params, standardized = everything.plot, everything.train.standardize
    size, seed = params.max_points, params.seed
    train_rows, test_rows = count_rows(args.train), count_rows(args.predictions)
    blocks = read_blocks(args.train, train_rows)
    train = sample_of_blocks(blocks, train_rows, Dataset.joined, size, seed)
    blocks = read_prediction_blocks(args.predictions, test_rows)
    predicted = sample_of_blocks(blocks, test_rows, Predictions.joined, size, seed)
    predictions = predictions_figure(train, predicted, params, (train_rows, test_rows))
    loss_curve = loss_curve_figure(read_train_log(args.train_log), standardized)
    with all_or_none():
        write_bytes_atomic(args.predictions_png, render_png(predictions, params.dpi))
        write_bytes_atomic(args.loss_png, render_png(loss_curve, params.dpi))


if __name__ == "__main__":
    run_stage(main)
