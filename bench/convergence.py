"""Benchmark: how near the least-squares line docs/your-own-data.md's two recipes come on real
tables (scikit-learn's diabetes, statsmodels' Longley; shuffled split), through the train and
evaluate stages: the largest relative error of reports/coefficients.csv's trained values
against scikit-learn's LinearRegression of the same train set, train_loss_gap, the test MAE
against lstsq_test_mae, and the two stages' seconds, side by side.
Usage: python -m bench.convergence
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LinearRegression

from harness.project import (
    COEFFICIENTS,
    METRICS,
    TRAIN_CSV,
    make_project,
    project_env,
    run_stage,
    set_params,
    stage_commands,
    use_real_table,
    yaml_blocks,
)
from linreg.io.artifacts import read_coefficients
from linreg.io.datasets import read_dataset

PAGE = "docs/your-own-data.md"


def recipes() -> dict[str, dict[str, object]]:
    """The page's SGD block's train keys (its first) and its L-BFGS block's."""
    first, *others = yaml_blocks(PAGE)
    (lbfgs,) = [block["train"] for block in others if block["train"].get("optimizer") == "lbfgs"]
    return {"SGD (the first block)": first["train"], "L-BFGS": lbfgs}


def main() -> None:
    commands, env = stage_commands(), project_env()
    print("| table, recipe | coefficients: largest relative error | train_loss_gap | test MAE "
          "against lstsq_test_mae | train + evaluate |")  # fmt: skip
    print("|---|---|---|---|---|")
    for table in ("diabetes", "longley"):
        with tempfile.TemporaryDirectory() as folder:
            project = make_project(Path(folder), env)
            use_real_table(project, table)
            for stage in ("generate", "split"):
                run_stage(commands[stage], project, env)
            train = read_dataset(project / TRAIN_CSV, dtype=np.float64)
            scikit = LinearRegression().fit(train.x, train.y)
            reference = np.append(scikit.coef_, scikit.intercept_)
            for name, recipe in recipes().items():
                set_params(project, "train", **recipe)
                print(f"| {table} ({len(train)} train rows), {name} | {row(project, reference)} |")


def row(project: Path, reference: np.ndarray) -> str:
    """The train and evaluate stages run: the table's figures, as cells."""
    commands, env = stage_commands(), project_env()
    seconds = sum(run_stage(commands[stage], project, env)[0] for stage in ("train", "evaluate"))
    trained = np.array([value for value, _ in read_coefficients(project / COEFFICIENTS).values()])
    error = np.max(np.abs(trained - reference) / np.abs(reference))
    metrics = json.loads((project / METRICS).read_text())
    mae = metrics["test_mae"] / metrics["lstsq_test_mae"] - 1
    return f"{error:.2g} | {metrics['train_loss_gap']:.2g} | {mae:+.2g} | {seconds:.1f} s"


if __name__ == "__main__":
    main()
