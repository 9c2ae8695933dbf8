"""Stage train: data/train.csv and data/test.csv -> models/model.pt and reports/train_log.csv.

train.nproc > 1 starts that many processes training together (DistributedDataParallel);
under torchrun, which starts them itself, every process joins the group torchrun describes.
A stopped or killed run continues from its resume point, in .resume/ (docs/long-runs.md).
"""

import gc

gc.disable()  # before the imports: see linreg.cli.run

from functools import partial
from pathlib import Path

from linreg.artifacts import write_train_log
from linreg.checkpoint import save_checkpoint
from linreg.cli import parse_args, run_stage
from linreg.dataset import read_split
from linreg.distributed import launched, placement, require_cores, run_ranks
from linreg.files import all_or_none, file_digest
from linreg.params import TrainParams, load_params
from linreg.resume import RESUME_FOLDER, Checkpoints, run_fingerprint
from linreg.training import fit


def main(argv: list[str] | None = None) -> None:
    args = parse_args(
        __doc__,
        inputs={"train": "train CSV", "test": "test CSV"},
        outputs={"model": "checkpoint to write", "train-log": "per-epoch loss CSV to write"},
        argv=argv,
    )
    params = load_params(args.params).train
    if not launched():  # under torchrun, which starts the processes, train.nproc is not used
        require_cores(params.nproc, "train.nproc")
    work = partial(train, params, Path(args.train), Path(args.test), args.model, args.train_log)
    run_ranks(params.nproc, params.device, work)


def train(params: TrainParams, train_csv: Path, test_csv: Path, model: str, log: str) -> None:
    """Fit on the data, from this run's resume point if there is one; the writing rank (or the
    only process) writes both outputs, then removes the resume point."""
    where = placement(params.device)
    part, parts = where.rank, where.world_size  # each rank reads its part of the files alone
    read = [file_digest(path, part, parts) for path in (train_csv, test_csv)]
    checkpoints = Checkpoints(
        path=RESUME_FOLDER / "train.pt",
        fingerprint=run_fingerprint(
            params, [d for each in where.gather(read) for d in each], parts
        ),
        every=params.checkpoint_seconds,
        live_log=Path(log),
    )
    train_set, test_set = read_split(train_csv, test_csv, part, parts)
    try:
        result = fit(
            params,
            train_set,
            test_set,
            verbose=True,
            checkpoints=checkpoints,
        )
    except BaseException:
        checkpoints.restore_log()
        raise
    if where.writes:
        with all_or_none():
            save_checkpoint(model, result.model)
            write_train_log(log, result.history)
        checkpoints.clear()


if __name__ == "__main__":
    run_stage(main)
