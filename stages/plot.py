"""Stage plot: data, predictions and loss log -> reports/predictions.png, reports/loss_curve.png."""

from linreg.cli import parse_args, run
from linreg.dataset import Dataset, read_dataset
from linreg.files import all_or_none, read_csv, write_bytes_atomic
from linreg.params import load_params
from linreg.plotting import plot_loss_curve, plot_predictions


def main(argv: list[str] | None = None) -> None:
    args = parse_args(
        __doc__,
        inputs={
            "train": "train CSV",
            "predictions": "predictions CSV (x, y, y_pred)",
            "train-log": "per-epoch loss CSV",
        },
        outputs={"predictions-png": "PNG to write", "loss-png": "PNG to write"},
        argv=argv,
    )

    params = load_params(args.params).plot
    train = read_dataset(args.train)
    predicted = read_csv(args.predictions, ("x", "y", "y_pred"))
    test = Dataset(predicted["x"], predicted["y"])
    log = read_csv(args.train_log, ("epoch", "train_loss", "test_loss"))
    predictions_png = plot_predictions(train, test, predicted["y_pred"], params)
    loss_png = plot_loss_curve(log["epoch"], log["train_loss"], log["test_loss"], params.dpi)
    with all_or_none():
        write_bytes_atomic(args.predictions_png, predictions_png)
        write_bytes_atomic(args.loss_png, loss_png)


if __name__ == "__main__":
    run(main)
