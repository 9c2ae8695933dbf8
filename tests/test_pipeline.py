"""The real pipeline: `dvc repro` in a temporary git repo, as a user runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from harness.project import (
    LOSS_PNG,
    METRICS,
    PREDICTIONS,
    PREDICTIONS_PNG,
    RAW,
    TRAIN_CSV,
    TRAIN_LOG,
)
from linreg.core.evaluation import METRIC_GOALS
from linreg.core.placement import auto_device, devices_here

from .helpers import (
    ARTIFACTS,
    LESSON_BIAS,
    LESSON_LOSS_TOLERANCE,
    LESSON_TEST_LOSS,
    LESSON_TRAIN_LOSS,
    LESSON_WEIGHT,
    ROOT,
    TEST_DEVICE,
    artifact_bytes,
    run,
    set_param,
    stages_run,
)

pytestmark = pytest.mark.slow


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


# Tests that only read the reproduced project share it; the others change their own copy.


def test_repro_writes_every_artifact(reproduced_template: Path):
    project = reproduced_template
    for name in ARTIFACTS:
        assert (project / name).stat().st_size > 0, name
    assert len(read_rows(project / RAW)) == 50
    assert len(read_rows(project / TRAIN_CSV)) == 40
    assert list(read_rows(project / PREDICTIONS)[0]) == ["x", "y", "y_pred"]
    assert len(read_rows(project / PREDICTIONS)) == 10
    assert list(json.loads((project / METRICS).read_text())) == list(METRIC_GOALS)


def test_defaults_reproduce_the_lessons_numbers(reproduced_template: Path):
    project = reproduced_template
    log = read_rows(project / TRAIN_LOG)
    assert [row["epoch"] for row in log] == [str(epoch) for epoch in range(100)]
    for row, train_loss, test_loss in zip(
        log[::10], LESSON_TRAIN_LOSS, LESSON_TEST_LOSS, strict=True
    ):
        assert float(row["train_loss"]) == pytest.approx(train_loss, abs=LESSON_LOSS_TOLERANCE)
        assert float(row["test_loss"]) == pytest.approx(test_loss, abs=LESSON_LOSS_TOLERANCE)
    metrics = json.loads((project / METRICS).read_text())
    assert round(metrics["weight"], 4) == LESSON_WEIGHT
    assert round(metrics["bias"], 4) == LESSON_BIAS


def test_second_repro_runs_nothing(project: Path):
    result = run(project, "dvc", "repro")
    assert stages_run(result.stdout) == []
    assert "Data and pipelines are up to date" in result.stdout
    assert "up to date" in run(project, "dvc", "status").stdout


ALL_FIVE = ["generate", "split", "train", "evaluate", "plot"]
TRAINED = ["train", "evaluate", "plot"]
# What changing each key of params.yaml to this value reruns, after validate (which reruns on
# any change). A stage reruns when a param it lists changes; one whose outputs come out
# byte-identical stops the cascade.
RERUNS: dict[str, tuple[object, list[str]]] = {
    "generate.weight": (0.5, ALL_FIVE),
    "generate.bias": (0.1, ALL_FIVE),
    "generate.start": (0.1, ALL_FIVE),
    "generate.end": (0.9, ALL_FIVE),
    "generate.step": (0.025, ALL_FIVE),
    "generate.noise_std": (0.01, ALL_FIVE),
    "generate.seed": (7, ["generate"]),  # the same clean line comes out
    "split.train_fraction": (0.7, ALL_FIVE[1:]),
    "split.shuffle": (True, ALL_FIVE[1:]),
    "split.seed": (7, ["split"]),  # unshuffled: the same split
    "train.model": ("linear", TRAINED),
    "train.loss": ("mse", TRAINED),
    "train.optimizer": ("adam", TRAINED),
    "train.lr": (0.02, TRAINED),
    "train.momentum": (0.5, TRAINED),
    "train.epochs": (50, TRAINED),
    "train.batch_size": (8, TRAINED),
    "train.seed": (7, TRAINED),
    # the tests' project trains on TEST_DEVICE; auto picks it here unless a GPU is there
    "train.device": ("auto", ["train"] if auto_device(devices_here()) == TEST_DEVICE else TRAINED),
    "train.log_every": (5, []),  # what is printed
    # two ranks end with the same model, and losses whose last bits differ (a mean of means)
    "train.nproc": (2, ["train", "plot"]),
    "train.checkpoint_seconds": (0, []),  # when a resume point is saved
    "train.standardize": (True, TRAINED),
    "train.dtype": ("float64", TRAINED),
    "plot.dpi": (80, ["plot"]),
    "plot.max_points": (20, ["plot"]),
    "plot.seed": (7, ["plot"]),
}
# A CSV source takes other keys with it: test_own_data changes it, and all five rerun
CHANGED_ELSEWHERE = {"generate.source"}


def test_the_rerun_matrix_holds_every_key_of_params_yaml():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    keys = {f"{section}.{key}" for section, values in params.items() for key in values}
    assert keys == set(RERUNS) | CHANGED_ELSEWHERE


@pytest.mark.parametrize("key", RERUNS)
def test_a_param_change_reruns_exactly_its_stages(project: Path, key: str):
    value, expected = RERUNS[key]
    set_param(project, key, value)
    # validate tracks the whole params file: it reruns first on any change
    assert stages_run(run(project, "dvc", "repro").stdout) == ["validate", *expected]
    assert "up to date" in run(project, "dvc", "status").stdout


def test_a_library_change_reruns_the_stages_that_import_it(project: Path):
    plotting = project / "src/linreg/core/plotting.py"
    plotting.write_text(plotting.read_text().replace("Training and test loss curves", "Loss"))
    before = artifact_bytes(project)
    assert stages_run(run(project, "dvc", "repro").stdout) == ["plot"]
    after = artifact_bytes(project)
    # the copy's own library ran, not the installed one
    assert after[LOSS_PNG] != before[LOSS_PNG]
    assert after[PREDICTIONS_PNG] == before[PREDICTIONS_PNG]


def test_clean_reruns_are_byte_identical(project: Path):
    before_lock = (project / "dvc.lock").read_text()
    before = artifact_bytes(project)
    result = run(project, "dvc", "repro", "--force")
    assert stages_run(result.stdout) == [
        "validate",
        "generate",
        "split",
        "train",
        "evaluate",
        "plot",
    ]
    assert (project / "dvc.lock").read_text() == before_lock
    assert artifact_bytes(project) == before


def test_params_and_metrics_diff_show_the_change(project: Path):
    set_param(project, "train.lr", 0.05)
    params_diff = run(project, "dvc", "params", "diff", "--json").stdout
    changed = json.loads(params_diff)["params.yaml"]
    assert list(changed) == ["train.lr"]
    assert (changed["train.lr"]["old"], changed["train.lr"]["new"]) == (0.01, 0.05)
    run(project, "dvc", "repro")
    metrics_diff = json.loads(run(project, "dvc", "metrics", "diff", "--json").stdout)
    change = metrics_diff[METRICS]["test_mae"]
    assert change["new"] < change["old"]  # a larger step gets further in 100 epochs


def test_experiment_run_and_show(project: Path):
    before = json.loads((project / METRICS).read_text())
    run(
        project, "dvc", "exp", "run", "-S", "train.lr=0.05", "-S", "train.epochs=50", "-n", "faster"
    )
    shown = json.loads(run(project, "dvc", "exp", "show", "--json").stdout)
    experiments = {
        exp["name"]: exp["data"]
        for revision in shown
        for experiment in revision.get("experiments") or []
        for exp in experiment["revs"]
    }
    assert set(experiments) == {"faster"}
    train = experiments["faster"]["params"]["params.yaml"]["data"]["train"]
    assert (train["lr"], train["epochs"]) == (0.05, 50)
    metrics = experiments["faster"]["metrics"][METRICS]["data"]
    assert metrics["test_mae"] != before["test_mae"]


def test_predict_command_uses_the_trained_model(project: Path):
    result = run(project, "python", "-m", "linreg.predict", "0.1", "0.5")
    metrics = json.loads((project / METRICS).read_text())
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [x for x, _ in lines] == ["0.1", "0.5"]
    for x, y in lines:
        assert float(y) == pytest.approx(metrics["weight"] * float(x) + metrics["bias"], abs=1e-6)
