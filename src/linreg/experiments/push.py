"""`make push`: `dvc push --run-cache`, and the outputs of every experiment of this repository too.

`dvc push --run-cache` sends the whole run-cache (the record of every stage run, experiments'
included) but only the outputs of the workspace: a teammate's `dvc repro --pull` of a value a
sweep ran would find that record, miss its outputs and train again. DVC's own `dvc exp push`
needs a git remote and publishes the experiments there; this sends their outputs alone.
"""

from __future__ import annotations

from dvc.exceptions import DvcException
from dvc.repo import Repo
from dvc.repo.experiments.utils import exp_refs

from linreg.core.errors import PipelineError
from linreg.experiments.revisions import run_shown
from linreg.runtime.cli import run


def push() -> None:
    run_shown(["dvc", "push", "--run-cache"])  # DVC's own progress, and errors
    with Repo() as repo:
        commits = {repo.scm.get_ref(str(ref)) for ref in exp_refs(repo.scm)}
        experiments = sorted(commit for commit in commits if commit)
        if not experiments:
            return
        try:
            files = repo.push(revs=experiments, workspace=False)
        except DvcException as error:
            raise PipelineError(f"dvc push of the experiments' outputs: {error}") from None
    print(f"{files} file(s) of {len(experiments)} experiment(s) pushed")


if __name__ == "__main__":
    run(push)
