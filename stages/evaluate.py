"""Stage evaluate: models/model.pt and the data, a block of rows at a time -> reports/metrics.json,
predictions.csv and coefficients.csv; says when training stopped short of the best line."""

import gc

gc.disable()  # before the imports: see linreg.runtime.cli.run

from linreg.core.evaluation import data_precision, evaluate_blocks, not_converged_line
from linreg.io.artifacts import (
    predictions_writer,
    read_precision,
    read_truth,
    write_coefficients,
)
from linreg.io.checkpoint import load_model
from linreg.io.datasets import read_blocks
from linreg.io.files import all_or_none, write_json
from linreg.io.params import load_params
from linreg.runtime.cli import parse_args, run_stage


def main(argv: list[str] | None = None) -> None:
    outputs = ["metrics", "predictions", "coefficients"]
    args = parse_args(__doc__, ["model", "train", "test", "truth"], outputs, argv)
    loss = load_params(args.params).train.loss  # the loss train_loss_gap measures
    model, truth = load_model(args.model), read_truth(args.truth)
    # the least-squares reference and the errors from the numbers as written, at their precision
    precision = data_precision(model, read_precision(args.truth))
    train, test = (read_blocks(path, dtype=precision) for path in (args.train, args.test))
    with all_or_none(), predictions_writer(args.predictions) as write:
        evaluation = evaluate_blocks(model, train, test, truth, write, loss)
        write_json(args.metrics, evaluation.metrics.as_json())
        write_coefficients(args.coefficients, evaluation.coefficients)
    if line := not_converged_line(evaluation.metrics, loss):
        print(line)


if __name__ == "__main__":
    run_stage(main)
