"""A sweep's grid: parsing, the cross product, names, and the results table."""

from __future__ import annotations

import pytest

from linreg.core.errors import PipelineError
from linreg.core.evaluation import CONVERGED_GAP
from linreg.experiments.grid import (
    SweepRow,
    experiment_name,
    grid_points,
    parse_grid,
    render_sweep_table,
)
from linreg.experiments.report import SETTLED_OSCILLATION


def test_grid_is_the_cross_product_last_key_fastest():
    grid = parse_grid(["train.lr=0.001,0.01 train.epochs=100,200"])
    assert grid == {"train.lr": ["0.001", "0.01"], "train.epochs": ["100", "200"]}
    assert grid_points(grid) == [
        {"train.lr": "0.001", "train.epochs": "100"},
        {"train.lr": "0.001", "train.epochs": "200"},
        {"train.lr": "0.01", "train.epochs": "100"},
        {"train.lr": "0.01", "train.epochs": "200"},
    ]


def test_grid_specs_may_come_as_separate_arguments_and_repeat_values_once():
    assert parse_grid(["train.lr=1e-3,0.1,1e-3", "plot.dpi=50"]) == {
        "train.lr": ["1e-3", "0.1"],
        "plot.dpi": ["50"],
    }


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([""], "GRID: empty"),
        (["train.lr"], "GRID: 'train.lr': expected KEY=V1,V2,..."),
        (["train.lr=0.1,,0.2"], "GRID: 'train.lr=0.1,,0.2': expected"),
        (["=0.1"], "GRID: '=0.1': expected"),
        (["train.lr=0.1", "train.lr=0.2"], "GRID: train.lr is given twice"),
    ],
)
def test_bad_grids_are_one_line_errors(specs, message):
    with pytest.raises(PipelineError) as error:
        parse_grid(specs)
    assert str(error.value).startswith(message)


def test_experiment_names_say_the_point_and_never_clash():
    point = {"train.lr": "0.01", "train.epochs": "200"}
    assert experiment_name(point, set()) == "train.lr=0.01,train.epochs=200"
    taken = {"train.lr=0.01,train.epochs=200", "train.lr=0.01,train.epochs=200-2"}
    assert experiment_name(point, taken) == "train.lr=0.01,train.epochs=200-3"


def metrics(mae: float, r2: float, gap: float = 0.0) -> dict[str, float]:
    return {"test_mae": mae, "test_r2": r2, "train_loss_gap": gap}


ROWS = [
    SweepRow("a", {"train.lr": "0.001"}, metrics(0.3, 0.95)),
    SweepRow("b", {"train.lr": "0.01"}, None),  # failed
    SweepRow("c", {"train.lr": "0.1"}, metrics(0.1, 0.9)),
    SweepRow("d", {"train.lr": "1"}, metrics(0.2, 0.5)),
]


def names_in_order(table: str) -> list[str]:
    return [line.split("|")[1].strip() for line in table.splitlines()[2:] if line.startswith("|")]


def test_table_is_sorted_best_first_with_failures_last():
    table = render_sweep_table(ROWS, "test_mae")
    header = table.splitlines()[0]
    assert header.startswith("| experiment | train.lr | flags | test_mae | test_mse |")
    assert names_in_order(table) == ["c", "d", "a", "b"]
    assert "| c | 0.1 | — | 0.1 |" in table
    assert "| b | 0.01 | failed | — |" in table
    # R² is better higher: best first is the highest
    assert names_in_order(render_sweep_table(ROWS, "test_r2")) == ["a", "c", "d", "b"]
    assert len(table.splitlines()) == 2 + len(ROWS)


def test_a_row_that_has_not_settled_or_converged_never_ranks_above_one_that_has():
    swinging = SweepRow("swings", {"train.lr": "0.1"}, metrics(0.01, 0.99), SETTLED_OSCILLATION * 2)
    short = SweepRow("short", {"train.lr": "0.01"}, metrics(0.05, 0.9, gap=CONVERGED_GAP * 10))
    good = SweepRow("good", {"train.lr": "0.001"}, metrics(0.2, 0.5))
    table = render_sweep_table([swinging, short, good], "test_mae")
    assert names_in_order(table) == ["good", "short", "swings"]
    assert "| swings | 0.1 | not settled (swings 2%) |" in table
    assert "| short | 0.01 | not converged (gap 1e-05) |" in table


def test_rows_of_other_data_are_not_comparable_and_rank_among_their_own():
    rows = [
        SweepRow("n0-bad", {"generate.noise_std": "0"}, metrics(0.3, 0.5), data="a" * 32),
        SweepRow("n1-good", {"generate.noise_std": "1"}, metrics(0.1, 0.5), data="b" * 32),
        SweepRow("n0-good", {"generate.noise_std": "0"}, metrics(0.2, 0.5), data="a" * 32),
    ]
    table = render_sweep_table(rows, "test_mae")
    assert names_in_order(table) == ["n0-good", "n0-bad", "n1-good"]
    assert "| experiment | generate.noise_std | data | flags |" in table
    assert table.splitlines()[-1].startswith("Not comparable: the experiments trained and tested")
    assert "Not comparable" not in render_sweep_table(ROWS, "test_mae")
