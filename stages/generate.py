"""Stage generate: the generate section of params.yaml -> data/raw.csv (the feature columns,
then the target) and data/truth.json (the line synthetic data was drawn from)."""

from linreg.artifacts import Truth, write_truth
from linreg.cli import parse_args, run, show_progress
from linreg.dataset import write_dataset
from linreg.external import read_external_csv
from linreg.files import all_or_none
from linreg.params import SyntheticParams, load_params
from linreg.synthetic import generate_dataset


def main(argv: list[str] | None = None) -> None:
    args = parse_args(
        __doc__,
        inputs={},
        outputs={"out": "CSV to write", "truth": "JSON of the true weight and bias to write"},
        argv=argv,
    )

    params = load_params(args.params).generate
    if isinstance(params, SyntheticParams):
        data, truth = generate_dataset(params), Truth(params.weight, params.bias)
    else:
        data, truth = read_external_csv(params), None
    with all_or_none():
        write_dataset(args.out, data, progress=show_progress())
        write_truth(args.truth, truth)


if __name__ == "__main__":
    run(main)
