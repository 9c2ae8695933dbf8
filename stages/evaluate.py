"""Stage evaluate: models/model.pt and the data -> reports/metrics.json, reports/predictions.csv."""

import argparse

from linreg.checkpoint import load_model
from linreg.cli import run
from linreg.dataset import read_dataset
from linreg.evaluation import evaluate
from linreg.files import write_csv, write_json
from linreg.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True, help="checkpoint to evaluate")
    parser.add_argument("--train", required=True, help="train CSV (for the least-squares floor)")
    parser.add_argument("--test", required=True, help="test CSV")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--predictions", required=True, help="predictions CSV to write")
    args = parser.parse_args(argv)

    truth = load_params(args.params).generate  # only generate.weight and generate.bias are read
    model = load_model(args.model)
    train, test = read_dataset(args.train), read_dataset(args.test)
    metrics, y_pred = evaluate(model, train, test, truth.weight, truth.bias)
    write_json(args.metrics, metrics)
    write_csv(args.predictions, {"x": test.x, "y": test.y, "y_pred": y_pred})


if __name__ == "__main__":
    run(main)
