"""The pipeline as dvc.yaml writes it, once: the path each stage's command passes for an
output, for the commands that read those outputs (predict, the experiment tooling)."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from linreg.core.errors import PipelineError


def output_path(stage: str, option: str, dvc_yaml: str | Path = "dvc.yaml") -> str:
    """The path that stage `stage`'s cmd in dvc.yaml gives its --`option` (e.g. train-log)."""
    stages = yaml.safe_load(Path(dvc_yaml).read_text(encoding="utf-8"))["stages"]
    words = shlex.split(stages[stage]["cmd"]) if stage in stages else []
    flag = f"--{option}"
    if flag not in words[:-1]:
        raise PipelineError(f"{dvc_yaml}: stage {stage!r} has no cmd passing {flag} PATH")
    return words[words.index(flag) + 1]
