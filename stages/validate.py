"""Stage validate: all of params.yaml -> nothing; fails on any problem in it.

Every other stage tracks only its own section, so a section no stage reads (a typo'd `plott:`)
would change nothing and pass unseen. This stage tracks the whole file: it reruns on any change
and stops `dvc repro` with one line naming what is wrong. It also finds what is not a file in
data/external/ (a named pipe), on which DVC's hashing of that folder would wait forever.
"""

import gc

gc.disable()  # before the imports: see linreg.runtime.cli.run

from linreg.core.params import EXTERNAL_DATA
from linreg.io.files import require_only_files
from linreg.io.params import load_params
from linreg.runtime.cli import parse_args, run_stage


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, [], [], argv)
    load_params(args.params)
    require_only_files(EXTERNAL_DATA)


if __name__ == "__main__":
    run_stage(main)
