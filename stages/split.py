"""Stage split: data/raw.csv -> data/train.csv and data/test.csv."""

from linreg.cli import parse_args, run, show_progress
from linreg.dataset import read_dataset, split_dataset, write_dataset
from linreg.files import all_or_none
from linreg.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = parse_args(
        __doc__,
        inputs={"raw": "CSV to split"},
        outputs={"train": "train CSV to write", "test": "test CSV to write"},
        argv=argv,
    )

    params = load_params(args.params).split
    train, test = split_dataset(read_dataset(args.raw), params)
    with all_or_none():
        write_dataset(args.train, train, progress=show_progress())
        write_dataset(args.test, test, progress=show_progress())


if __name__ == "__main__":
    run(main)
