"""Stage train: data/train.csv and data/test.csv -> models/model.pt and reports/train_log.csv, in
train.nproc processes or torchrun's (docs/scaling-out.md); a stopped run resumes where it was
(docs/long-runs.md)."""

import gc

gc.disable()  # before the imports: see linreg.runtime.cli.run

from argparse import Namespace
from functools import partial

from linreg.core.params import TrainParams
from linreg.core.training import fit
from linreg.io.datasets import read_split
from linreg.io.params import load_params
from linreg.runtime.cli import parse_args, run_stage
from linreg.runtime.launcher import run_ranks
from linreg.runtime.preload import start_importing
from linreg.runtime.training_run import TrainingRun


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, ["train", "test"], ["model", "train-log"], argv)
    params = load_params(args.params).train
    run_ranks(params.nproc, params.device, partial(train, params, args))


def train(params: TrainParams, args: Namespace) -> None:
    """This process's share of the training, from a resume point if there is one."""
    with TrainingRun(params, [args.train, args.test], args.train_log) as run:
        start_importing()  # torch.optim's first step's import, while the data is read
        data = args.train, args.test, run.part, run.parts
        train_set, test_set = read_split(*data, params.dtype)
        result = fit(params, train_set, test_set, run)
        run.save(args.model, result)  # the writing rank writes both outputs


if __name__ == "__main__":
    run_stage(main)
