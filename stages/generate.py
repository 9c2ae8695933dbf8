"""Stage generate: the generate section of params.yaml -> data/raw.csv (columns x, y)."""

import argparse

from linreg.cli import run
from linreg.dataset import write_dataset
from linreg.params import load_params
from linreg.synthetic import generate_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="CSV to write")
    args = parser.parse_args(argv)

    params = load_params(args.params).generate
    write_dataset(args.out, generate_dataset(params))


if __name__ == "__main__":
    run(main)
