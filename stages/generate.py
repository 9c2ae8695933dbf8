"""Stage generate: the generate section of params.yaml -> data/raw.csv (columns x, y)."""

from linreg.cli import parse_args, run, show_progress
from linreg.dataset import write_dataset
from linreg.params import load_params
from linreg.synthetic import generate_dataset


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, inputs={}, outputs={"out": "CSV to write"}, argv=argv)

    params = load_params(args.params).generate
    write_dataset(args.out, generate_dataset(params), progress=show_progress())


if __name__ == "__main__":
    run(main)
