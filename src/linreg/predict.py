"""Use the trained model: `python -m linreg.predict 0.1 0.5` prints a prediction for each x."""

from __future__ import annotations

import argparse

import numpy as np

from linreg.checkpoint import load_model
from linreg.cli import run
from linreg.evaluation import predict
from linreg.pipeline import output_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m linreg.predict", description=__doc__)
    parser.add_argument("x", nargs="+", type=float, help="inputs to predict")
    parser.add_argument("--model", help="checkpoint to load (default: the train stage's)")
    args = parser.parse_args(argv)

    model = load_model(args.model or output_path("train", "model"))
    x = np.asarray(args.x, dtype=np.float32)
    for x_value, y_value in zip(x.tolist(), predict(model, x).tolist(), strict=True):
        print(f"{x_value:g}\t{y_value:.6f}")


def entry_point() -> None:
    run(main)


if __name__ == "__main__":
    entry_point()
