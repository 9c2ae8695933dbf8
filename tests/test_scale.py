"""A million rows through every stage: each stays within its memory bound."""

from __future__ import annotations

import pytest

from harness.project import PREDICTIONS, RAW
from linreg.runtime.limits import BYTES_PER_VALUE

from .helpers import STAGE_COMMANDS, project_env, run_stage, set_param

# one worker runs the tests that measure memory or cap time, one after another
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("measures")]

ROWS = 1_000_000
# What a million rows may add to a stage's peak RSS over the same stage on the lesson's 50 rows:
# four times the bytes a row (x and y) that limits.require_memory budgets, 256 MB (bench/scale.py measures
# 60 to 95 MiB). The baseline is this machine's own: torch's, numpy's and CUDA's fixed costs
# grow with the cores and GPUs there are, the data's cost does not.
GROWTH_BOUND = 4 * BYTES_PER_VALUE * 2 * ROWS


def peaks(project) -> dict[str, int]:
    return {
        stage: run_stage(command, project, project_env())[1]
        for stage, command in STAGE_COMMANDS.items()
    }


def test_a_million_rows_stay_within_the_memory_bound(project):
    baseline = peaks(project)
    set_param(project, "generate.step", 1 / ROWS)
    grown = {stage: peak - baseline[stage] for stage, peak in peaks(project).items()}

    assert all(growth < GROWTH_BOUND for growth in grown.values()), {
        stage: f"+{growth / 2**20:.0f} MiB" for stage, growth in grown.items()
    }
    assert grown["generate"] > 8 * ROWS  # it measures something: x and y, float32 and float64
    with (project / RAW).open() as raw:
        assert sum(1 for _ in raw) == ROWS + 1  # the header and a million rows
    assert (project / PREDICTIONS).stat().st_size > 0
