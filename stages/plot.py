"""Stage plot: data, predictions and loss log -> reports/predictions.png, reports/loss_curve.png."""

from linreg.artifacts import read_predictions, read_train_log
from linreg.cli import parse_args, run
from linreg.dataset import read_dataset
from linreg.files import all_or_none, write_bytes_atomic
from linreg.params import load_params
from linreg.plotting import loss_curve_figure, predictions_figure, render_png


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
    predictions = predictions_figure(
        read_dataset(args.train), read_predictions(args.predictions), params
    )
    loss_curve = loss_curve_figure(read_train_log(args.train_log))
    with all_or_none():
        write_bytes_atomic(args.predictions_png, render_png(predictions, params.dpi))
        write_bytes_atomic(args.loss_png, render_png(loss_curve, params.dpi))


if __name__ == "__main__":
    run(main)
