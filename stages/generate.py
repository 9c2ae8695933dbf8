"""Stage generate: the generate section of params.yaml -> data/raw.csv (the feature columns,
then the target) and data/truth.json (the line synthetic data was drawn from)."""

import gc

gc.disable()  # before the imports: see linreg.runtime.cli.run

from linreg.core.params import SyntheticParams
from linreg.core.records import Truth
from linreg.core.synthetic import generate_blocks
from linreg.io.artifacts import write_truth
from linreg.io.datasets import write_blocks, write_dataset
from linreg.io.external import read_external_csv
from linreg.io.files import all_or_none
from linreg.io.params import load_params
from linreg.runtime.cli import parse_args, run_stage
from linreg.runtime.limits import require_memory


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, [], ["out", "truth"], argv)

    params = load_params(args.params).generate
    with all_or_none():
        if isinstance(params, SyntheticParams):  # made and written a block at a time
            require_memory(params)
            write_blocks(args.out, generate_blocks(params), params.rows)
            write_truth(args.truth, Truth(params.weight, params.bias))
        else:
            data, dropped = read_external_csv(params)
            if dropped:
                print(f"{params.source}: {dropped:,} rows with a missing cell left out")
            write_dataset(args.out, data)
            write_truth(args.truth, None, rows_dropped=dropped, precision=data.y.dtype.type)


if __name__ == "__main__":
    run_stage(main)
