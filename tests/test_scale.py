"""A million rows through every stage: each stays within its memory bound."""

from __future__ import annotations

import pytest

from bench.project import project_env, run_stage

from .conftest import STAGE_COMMANDS, set_param

pytestmark = pytest.mark.slow

ROWS = 1_000_000
# Peak RSS bound per stage at a million rows: torch's own ~350 MiB plus a few copies of the
# 8 MB of data (bench/scale.py measures ~450 MiB for train; ten million rows stay under 2 GiB).
PEAK_RSS_BOUND = 768 * 2**20


def test_a_million_rows_stay_within_the_memory_bound(project):
    set_param(project, "generate.step", 1 / ROWS)
    peaks = {
        stage: run_stage(command, project, project_env())[1]
        for stage, command in STAGE_COMMANDS.items()
    }

    assert all(peak < PEAK_RSS_BOUND for peak in peaks.values()), {
        stage: f"{peak / 2**20:.0f} MiB" for stage, peak in peaks.items()
    }
    with (project / "data/raw.csv").open() as raw:
        assert sum(1 for _ in raw) == ROWS + 1  # the header and a million rows
    assert (project / "reports/predictions.csv").stat().st_size > 0
