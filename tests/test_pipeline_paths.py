"""The experiment tooling reads each output's path from dvc.yaml, where it is written once."""

from __future__ import annotations

import pytest

from linreg.core.errors import PipelineError
from linreg.io.pipeline import output_path

from .helpers import ROOT


def test_output_paths_come_from_the_stage_commands():
    dvc_yaml = ROOT / "dvc.yaml"
    assert output_path("train", "train-log", dvc_yaml) == "reports/train_log.csv"
    assert output_path("evaluate", "predictions", dvc_yaml) == "reports/predictions.csv"
    assert output_path("evaluate", "metrics", dvc_yaml) == "reports/metrics.json"


def test_a_moved_output_is_followed(tmp_path):
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text(
        "stages:\n  train:\n    cmd: python stages/train.py --train-log 'logs/my log.csv'\n"
    )
    assert output_path("train", "train-log", dvc_yaml) == "logs/my log.csv"


@pytest.mark.parametrize(("stage", "option"), [("train", "nope"), ("nope", "metrics")])
def test_a_missing_stage_or_option_is_one_line(stage, option):
    with pytest.raises(PipelineError, match=rf"dvc.yaml: stage '{stage}' has no cmd passing --"):
        output_path(stage, option, ROOT / "dvc.yaml")
