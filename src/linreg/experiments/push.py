"""`make push`: `dvc push --run-cache`, the outputs of every experiment of this repository, and,
where git has a remote `origin`, the experiments themselves (`dvc exp push`).

`dvc push --run-cache` sends the whole run-cache (the record of every stage run, experiments'
included) but only the outputs of the workspace: a teammate's `dvc repro --pull` of a value a
sweep ran would find that record, miss its outputs and train again. So the experiments'
outputs go too. Their git refs go to `origin`, so that a teammate can `dvc exp pull origin
NAME` and `dvc exp apply NAME` one, metrics and pictures included, and `dvc repro` runs nothing.
"""

from __future__ import annotations

from dvc.exceptions import DvcException
from dvc.repo import Repo
from dvc.repo.experiments.utils import exp_refs
from scmrepo.exceptions import InvalidRemote

from linreg.core.errors import PipelineError
from linreg.experiments.revisions import run_shown
from linreg.runtime.cli import run

GIT_REMOTE = "origin"  # where the experiments' refs go, when git has it


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
        try:
            repo.scm.get_remote_url(GIT_REMOTE)
            has_remote = True
        except InvalidRemote:
            has_remote = False
    print(f"{files} file(s) of {len(experiments)} experiment(s) pushed")
    if has_remote:  # their outputs are there already
        run_shown(["dvc", "exp", "push", "--all-commits", "--no-cache", GIT_REMOTE])


if __name__ == "__main__":
    run(push)
