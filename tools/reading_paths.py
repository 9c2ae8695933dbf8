"""The reading paths of docs/development.md, measured: for each path, the functions and classes
a newcomer reads (each counted whole, decorators and docstring included) at the revision before
issue 35's change and at this checkout, and the files and lines they add up to.

    python -m tools.reading_paths        # prints the table docs/development.md holds
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "a313552"  # main when issue 35 was filed

# path -> revision -> {file: [names]}; a name is a module-level function, class or constant,
# or Class.method
Reading = dict[str, list[str]]
PATHS: dict[str, dict[str, Reading]] = {
    "the default loop": {
        BEFORE: {
            "stages/train.py": ["main", "train"],
            "src/linreg/core/training.py": [
                "Loss", "_chunks", "FitResult", "Losses", "PlainRun", "make_optimizer", "as_column",
                "as_tensors", "fit", "epoch_updates", "check_resumable", "_step",
                "_stop_if_diverged",
            ],
            "src/linreg/core/placement.py": ["Placement", "placement"],
            "src/linreg/core/model.py": ["ParameterModel", "build_model"],
            "src/linreg/runtime/launcher.py": ["run_ranks"],
        },
        "HEAD": {
            "stages/train.py": ["main", "train"],
            "src/linreg/core/training.py": [
                "FitResult", "Losses", "PlainRun", "make_optimizer", "fit", "_stop_if_diverged"
            ],
            "src/linreg/core/placement.py": ["Placed", "place"],
            "src/linreg/core/batches.py": ["Batches"],
            "src/linreg/core/model.py": ["ParameterModel", "build_model"],
        },
    },
    "an epoch's loss to reports/train_log.csv": {
        BEFORE: {
            "stages/train.py": ["train"],
            "src/linreg/core/training.py": ["Losses", "fit", "epoch_updates", "_step"],
            "src/linreg/runtime/training_run.py": [
                "TrainingRun.end_of_epoch", "TrainingRun._log_so_far"
            ],
            "src/linreg/io/checkpoint.py": ["save_fit"],
            "src/linreg/io/artifacts.py": ["TRAIN_LOG_COLUMNS", "write_train_log"],
            "src/linreg/core/records.py": ["TrainLog"],
            "src/linreg/io/tables.py": ["write_csv"],
        },
        "HEAD": {
            "stages/train.py": ["train"],
            "src/linreg/core/training.py": ["Losses", "fit"],
            "src/linreg/runtime/training_run.py": [
                "TrainingRun.end_of_epoch", "TrainingRun._log_so_far", "TrainingRun.save"
            ],
            "src/linreg/io/artifacts.py": ["TRAIN_LOG_COLUMNS", "write_train_log"],
            "src/linreg/core/records.py": ["TrainLog"],
            "src/linreg/io/tables.py": ["write_csv"],
        },
    },
    "a SIGTERM mid-epoch to a resume point and the exit": {
        BEFORE: {
            "src/linreg/runtime/signals.py": ["Terminated", "die_by", "HeldStops"],
            "src/linreg/runtime/training_run.py": [
                "TrainingRun.epochs", "TrainingRun.end_of_epoch", "TrainingRun._stop_and_due",
                "TrainingRun._due", "TrainingRun.__exit__",
            ],
            "src/linreg/core/training.py": ["fit", "TrainingState"],
            "src/linreg/io/checkpoint.py": ["save_resume_point"],
            "src/linreg/runtime/cli.py": ["run", "run_stage"],
        },
        "HEAD": {
            "src/linreg/runtime/signals.py": ["Terminated", "die_by", "HeldStops"],
            "src/linreg/runtime/training_run.py": [
                "TrainingRun.epochs", "TrainingRun.end_of_epoch", "TrainingRun._stop_and_due",
                "TrainingRun.resume_point_due", "TrainingRun.held_stop", "TrainingRun.__exit__",
            ],
            "src/linreg/core/training.py": ["fit", "TrainingState"],
            "src/linreg/io/resume_point.py": ["save_resume_point"],
            "src/linreg/runtime/cli.py": ["run", "run_stage"],
        },
    },
}  # fmt: skip


def source(revision: str, path: str) -> str:
    if revision == "HEAD":
        return (ROOT / path).read_text()  # this checkout, as it is
    return subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def lines_of(tree: ast.Module, name: str) -> int:
    """The lines of the definition `name` (Class.method for a method), decorators included."""
    nodes: list[ast.stmt] = tree.body
    *outer, last = name.split(".")
    for part in outer:
        nodes = next(n for n in nodes if isinstance(n, ast.ClassDef) and n.name == part).body
    node = next(n for n in nodes if last in _names(n))
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    assert node.end_lineno is not None
    return node.end_lineno - first + 1


def _names(node: ast.stmt) -> list[str]:
    """The names a statement defines: a function's or class's, or an assignment's targets."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return [target.id for target in targets if isinstance(target, ast.Name)]


def measure(reading: Reading, revision: str) -> tuple[int, int]:
    """The files and lines of a reading path at `revision`."""
    lines = 0
    for path, names in reading.items():
        tree = ast.parse(source(revision, path))
        lines += sum(lines_of(tree, name) for name in names)
    return len(reading), lines


def main() -> None:
    print(f"| path | before ({BEFORE}) | after |")
    print("|---|---|---|")
    for path, readings in PATHS.items():
        before, after = (measure(reading, revision) for revision, reading in readings.items())
        print(f"| {path} | {_shown(*before)} | {_shown(*after)} |")


def _shown(files: int, lines: int) -> str:
    return f"{files} files, {lines} lines"


if __name__ == "__main__":
    main()
