"""Stage split: data/raw.csv -> data/train.csv and data/test.csv."""

import gc

gc.disable()  # before the imports: see linreg.runtime.cli.run

from linreg.io.datasets import split_file
from linreg.io.params import load_params
from linreg.runtime.cli import parse_args, run_stage


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, ["raw"], ["train", "test"], argv)
    params = load_params(args.params).split
    split_file(args.raw, args.train, args.test, params)


if __name__ == "__main__":
    run_stage(main)
