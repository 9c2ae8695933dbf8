"""Stage train: data/train.csv and data/test.csv -> models/model.pt and reports/train_log.csv.

train.nproc > 1 starts that many processes training together (DistributedDataParallel);
under torchrun, which starts them itself, every process joins the group torchrun describes.
"""

import argparse

from linreg.checkpoint import save_checkpoint
from linreg.cli import parse_args, run, show_progress
from linreg.dataset import read_dataset
from linreg.distributed import join, launched, leave, local_world_size, require_devices, spawn
from linreg.files import all_or_none, write_csv
from linreg.params import load_params
from linreg.training import fit, resolve_device


def main(argv: list[str] | None = None) -> None:
    args = parse_args(
        __doc__,
        inputs={"train": "train CSV", "test": "test CSV"},
        outputs={"model": "checkpoint to write", "train-log": "per-epoch loss CSV to write"},
        argv=argv,
    )
    params = load_params(args.params).train
    if launched():  # by torchrun: it started this machine's processes already
        require_devices(local_world_size(), params.device, "torchrun --nproc-per-node")
        train(args)
    elif params.nproc > 1:
        require_devices(params.nproc, params.device, "train.nproc")
        spawn(params.nproc, train, args)  # each process runs train(args) as one rank
    else:
        train(args)


def train(args: argparse.Namespace) -> None:
    params = load_params(args.params).train
    ranks = join(resolve_device(params.device)) if launched() else None
    try:
        train_set, test_set = read_dataset(args.train), read_dataset(args.test)
        result = fit(params, train_set, test_set, True, show_progress(), ranks)
    finally:
        leave()
    if ranks is None or ranks.writes:
        log = result.history
        with all_or_none():
            save_checkpoint(args.model, result.model)
            write_csv(
                args.train_log,
                {"epoch": log.epoch, "train_loss": log.train_loss, "test_loss": log.test_loss},
            )


if __name__ == "__main__":
    run(main)
