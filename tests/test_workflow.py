"""The CI workflow: valid for actionlint, and it does what the README says CI does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.lock import DEV, PIPELINE

from .helpers import ROOT

WORKFLOW = ROOT / ".github/workflows/pipeline.yml"
# The venv's (the test tools' pinned set installs it there), else one on PATH
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
    "actionlint"
)


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT, "actionlint is missing: make test installs it (requirements/dev.txt)"
    return subprocess.run(
        [ACTIONLINT, "-no-color", str(path)], capture_output=True, text=True, check=False
    )


def test_actionlint_accepts_the_workflow():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("steps.compare.outcome", "steps.comparison.outcome"),  # a step id that is not there
        ("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"),  # a key that is not there
        ("${{ inputs.grid }}", "${{ inputs.grids }}"),  # an input that is not there
    ],
)
def test_actionlint_catches_a_broken_workflow(tmp_path: Path, old: str, new: str):
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / ".github/workflows/pipeline.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(old, new, 1))
    assert actionlint(broken).returncode != 0


def steps(job: dict) -> list[dict]:
    return job["steps"]


def test_workflow_runs_ci_compares_pull_requests_and_sweeps_by_hand():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    # a pull request's branch runs the suite once, as the pull request: pushes only on main
    assert triggers["push"] == {"branches": ["main"]}

    pipeline, sweep = workflow["jobs"]["pipeline"], workflow["jobs"]["sweep"]
    # each job's pip cache is keyed on the pinned sets its make targets install (test: both;
    # sweep: the pipeline's), and make alone chooses torch's build: no index set here
    for job, pinned in ((pipeline, {PIPELINE, DEV}), (sweep, {PIPELINE})):
        checkout, python = steps(job)[:2]
        assert checkout["with"]["fetch-depth"] == 0  # full history: DVC experiments need it
        assert python["with"]["cache"] == "pip"
        assert python["with"]["python-version"] == "3.11"
        assert set(python["with"]["cache-dependency-path"].split()) == set(map(str, pinned))
    assert "PIP_" not in WORKFLOW.read_text()

    runs = [step.get("run", "") for step in steps(pipeline)]
    assert "bash .ci/run" in runs  # make test, the pipeline, dvc.lock reproduced exactly
    compare = next(step for step in steps(pipeline) if step.get("id") == "compare")
    assert compare["if"] == "github.event_name == 'pull_request'"
    assert compare["run"].startswith("make compare BASE=")
    assert compare["env"]["FAIL_IF"] == "test_mae>+5%"
    after = steps(pipeline)[steps(pipeline).index(compare) + 1 :]
    summary = next(step for step in after if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert "comparison/summary.md" in summary["run"]  # the report GitHub can show whole
    # one comment on the pull request, found again by its marker and updated, with GitHub's
    # own token (the Markdown it posts: test_experiments)
    comment = next(step for step in after if "gh api" in step.get("run", ""))
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert pipeline["permissions"]["pull-requests"] == "write"
    for posted in ("comparison/summary.md", "startswith", "--method PATCH", "--method POST"):
        assert posted in comment["run"], posted
    assert "github.repository" in comment["if"]  # a fork's token cannot comment
    assert any(step.get("uses", "").startswith("actions/upload-artifact") for step in after)
    assert all("!cancelled()" in step["if"] for step in after)  # also when the gate failed

    assert sweep["if"] == "github.event_name == 'workflow_dispatch'"
    sweep_runs = "\n".join(step.get("run", "") for step in steps(sweep))
    assert "make sweep" in sweep_runs
    assert "GITHUB_STEP_SUMMARY" in sweep_runs
