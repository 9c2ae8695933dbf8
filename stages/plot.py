"""Stage plot: data, predictions and loss log -> reports/predictions.png, reports/loss_curve.png."""

import argparse

from linreg.cli import run
from linreg.dataset import Dataset, read_dataset
from linreg.files import read_csv, write_bytes_atomic
from linreg.params import load_params
from linreg.plotting import plot_loss_curve, plot_predictions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train", required=True, help="train CSV")
    parser.add_argument("--predictions", required=True, help="predictions CSV (x, y, y_pred)")
    parser.add_argument("--log", required=True, help="per-epoch loss CSV")
    parser.add_argument("--predictions-png", required=True, help="PNG to write")
    parser.add_argument("--loss-png", required=True, help="PNG to write")
    args = parser.parse_args(argv)

    params = load_params(args.params).plot
    train = read_dataset(args.train)
    predicted = read_csv(args.predictions, ("x", "y", "y_pred"))
    test = Dataset(predicted["x"], predicted["y"])
    log = read_csv(args.log, ("epoch", "train_loss", "test_loss"))
    png = plot_predictions(train, test, predicted["y_pred"], params.dpi)
    write_bytes_atomic(args.predictions_png, png)
    png = plot_loss_curve(log["epoch"], log["train_loss"], log["test_loss"], params.dpi)
    write_bytes_atomic(args.loss_png, png)


if __name__ == "__main__":
    run(main)
