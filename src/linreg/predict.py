"""Use the trained model: `python -m linreg.predict 0.1 0.5` prints a prediction for each x;
with k features, each row is k comma-separated values: `python -m linreg.predict 1,2,3 4,5,6`."""

from __future__ import annotations

import numpy as np

from linreg.core.errors import PipelineError, shown
from linreg.core.evaluation import model_precision, predict
from linreg.core.model import model_features
from linreg.io.checkpoint import load_model
from linreg.io.pipeline import output_path
from linreg.runtime.cli import ArgumentParser, run


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m linreg.predict", description=__doc__)
    parser.add_argument(
        "rows", nargs="+", metavar="x", help="an input row: k comma-separated numbers"
    )
    parser.add_argument("--model", help="checkpoint to load (default: the train stage's)")
    args = parser.parse_args(argv)

    model = load_model(args.model or output_path("train", "model"))
    x = parse_rows(args.rows, model_features(model), model_precision(model))
    y = predict(model, x)
    if not np.isfinite(y).all():  # as evaluate refuses the same model
        raise PipelineError(
            f"the model's predictions overflow {model_precision(model)} for "
            f"{shown(args.rows[int(np.argmin(np.isfinite(y)))])}: retrain it"
        )
    for row, y_value in zip(args.rows, y.tolist(), strict=True):
        print(f"{row}\t{y_value:.6f}")


def parse_rows(rows: list[str], features: int, precision: str = "float32") -> np.ndarray:
    """Command-line rows of comma-separated numbers -> (n, features) of the model's precision
    (float32 or float64)."""
    largest = float(np.finfo(precision).max)
    values = []
    for row in rows:
        try:
            numbers = [float(value) for value in row.split(",")]
        except ValueError:
            raise PipelineError(f"input {shown(row)}: not comma-separated numbers") from None
        if len(numbers) != features or not all(abs(x) <= largest for x in numbers):
            raise PipelineError(
                f"input {shown(row)}: {len(numbers)} value(s); the model takes {features} "
                f"finite {precision} number(s) per row (within ±{largest:.8g}), separated by "
                "commas"
            )
        values.append(numbers)
    return np.asarray(values, dtype=precision)


def entry_point() -> None:
    run(main)


if __name__ == "__main__":
    entry_point()
