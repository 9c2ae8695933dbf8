"""Stage evaluate: models/model.pt and the data -> reports/metrics.json, reports/predictions.csv."""

from linreg.artifacts import read_truth, write_predictions
from linreg.checkpoint import load_model
from linreg.cli import parse_args, run, show_progress
from linreg.dataset import read_split
from linreg.evaluation import evaluate
from linreg.files import all_or_none, write_json


def main(argv: list[str] | None = None) -> None:
    args = parse_args(
        __doc__,
        inputs={
            "model": "checkpoint to evaluate",
            "train": "train CSV (for the least-squares floor)",
            "test": "test CSV",
            "truth": "the true weight and bias (nulls when unknown)",
        },
        outputs={"metrics": "metrics JSON to write", "predictions": "predictions CSV to write"},
        argv=argv,
    )

    model = load_model(args.model)
    train, test = read_split(args.train, args.test)
    metrics, predictions = evaluate(model, train, test, read_truth(args.truth))
    with all_or_none():
        write_json(args.metrics, metrics.as_json())
        write_predictions(args.predictions, predictions, progress=show_progress())


if __name__ == "__main__":
    run(main)
