"""Stage train: data/train.csv and data/test.csv -> models/model.pt and reports/train_log.csv."""

from linreg.checkpoint import save_checkpoint
from linreg.cli import parse_args, run, show_progress
from linreg.dataset import read_dataset
from linreg.files import write_csv
from linreg.params import load_params
from linreg.training import fit


def main(argv: list[str] | None = None) -> None:
    args = parse_args(
        __doc__,
        inputs={"train": "train CSV", "test": "test CSV"},
        outputs={"model": "checkpoint to write", "log": "per-epoch loss CSV to write"},
        argv=argv,
    )

    params = load_params(args.params).train
    train, test = read_dataset(args.train), read_dataset(args.test)
    result = fit(params, train, test, verbose=True, progress=show_progress())
    save_checkpoint(args.model, result.model)
    history = result.history
    write_csv(
        args.log,
        {"epoch": history.epoch, "train_loss": history.train_loss, "test_loss": history.test_loss},
    )


if __name__ == "__main__":
    run(main)
