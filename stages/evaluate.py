"""Stage evaluate: models/model.pt and the data -> reports/metrics.json, reports/predictions.csv.
The data is read a block of rows at a time: memory does not grow with the train set."""

import gc

gc.disable()  # before the imports: see linreg.runtime.cli.run

from linreg.core.evaluation import data_precision, evaluate_blocks
from linreg.io.artifacts import predictions_writer, read_precision, read_truth
from linreg.io.checkpoint import load_model
from linreg.io.datasets import read_blocks
from linreg.io.files import all_or_none, write_json
from linreg.runtime.cli import parse_args, run_stage


def main(argv: list[str] | None = None) -> None:
    inputs, outputs = ["model", "train", "test", "truth"], ["metrics", "predictions"]
    args = parse_args(__doc__, inputs, outputs, argv, reads_params=False)
    model, truth = load_model(args.model), read_truth(args.truth)
    # the least-squares reference and the errors from the numbers as written, at their precision
    precision = data_precision(model, read_precision(args.truth))
    train, test = (read_blocks(path, dtype=precision) for path in (args.train, args.test))
    with all_or_none(), predictions_writer(args.predictions) as write:
        metrics = evaluate_blocks(model, train, test, truth, write)
        write_json(args.metrics, metrics.as_json())


if __name__ == "__main__":
    run_stage(main)
