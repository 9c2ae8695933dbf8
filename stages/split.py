"""Stage split: data/raw.csv -> data/train.csv and data/test.csv."""

import argparse

from linreg.cli import run
from linreg.dataset import read_dataset, split_dataset, write_dataset
from linreg.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw", required=True, help="CSV to split")
    parser.add_argument("--train", required=True, help="train CSV to write")
    parser.add_argument("--test", required=True, help="test CSV to write")
    args = parser.parse_args(argv)

    params = load_params(args.params).split
    train, test = split_dataset(read_dataset(args.raw), params)
    write_dataset(args.train, train)
    write_dataset(args.test, test)


if __name__ == "__main__":
    run(main)
