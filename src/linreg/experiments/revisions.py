"""Git and DVC, driven through their command lines: revisions, files at a revision, the
diffs, experiments, and a base revision's artifacts (from the cache, a remote or a rerun)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from linreg.core.errors import PipelineError
from linreg.io.files import make_folder


def _env() -> dict[str, str]:
    return {**os.environ, "DVC_NO_ANALYTICS": "1"}  # whatever the revision's .dvc/config says


def _run(args: Sequence[str], cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)


def run_shown(args: Sequence[str], cwd: str | Path | None = None, check: bool = True) -> int:
    """Run a long command whose progress the user watches; its exit status. Its output goes to
    our stderr, so that stdout keeps only what the tool itself prints."""
    code = subprocess.run(args, cwd=cwd, stdout=sys.stderr, env=_env(), check=False).returncode
    if check and code != 0:
        where = f" in {cwd}" if cwd else ""
        raise PipelineError(f"`{' '.join(args)}`{where} failed (exit {code}); its output is above")
    return code


def resolve_revision(rev: str, key: str = "BASE") -> str:
    """The full commit hash of a branch, tag or commit; a one-line error naming `key` (the
    option that gave `rev`) when there is none."""
    found = _run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"])
    if found.returncode == 0:
        return found.stdout.strip()
    shallow = _run(["git", "rev-parse", "--is-shallow-repository"]).stdout.strip() == "true"
    hint = " (this clone is shallow: git fetch --unshallow)" if shallow else ""
    raise PipelineError(f"{key} = {rev!r}: no such branch, tag or commit in this repository{hint}")


def has_file(rev: str, path: str) -> bool:
    """Whether git holds `path` at commit `rev`."""
    return _run(["git", "cat-file", "-e", f"{rev}:{path}"]).returncode == 0


def dvc_json(*args: str) -> Any:
    """`dvc ARGS --json`, parsed; a failure is one line with DVC's last line of complaint."""
    result = _run(["dvc", *args, "--json"])
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no output"]
        raise PipelineError(f"`dvc {' '.join(args)}` failed: {lines[-1]}")
    return json.loads(result.stdout or "{}")


def reproduce_workspace() -> None:
    """`dvc repro` in the workspace (a no-op when it is up to date), its output shown only
    when it fails: what the comparison says is its own lines."""
    print("compare: dvc repro (the workspace)", file=sys.stderr)
    result = _run(["dvc", "repro"])
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise PipelineError(f"`dvc repro` failed (exit {result.returncode}); its output is above")


def run_experiment(name: str, point: dict[str, str]) -> bool:
    """`dvc exp run --temp`: one experiment in a temporary copy of the workspace, which stays
    as it is. True when it succeeded; DVC has printed why when not."""
    args = ["dvc", "exp", "run", "--temp", "--name", name]
    for key, value in point.items():
        args += ["--set-param", f"{key}={value}"]
    return run_shown(args, check=False) == 0


def experiments(baseline: str) -> dict[str, dict[str, Any]]:
    """The experiments made on commit `baseline`, by name: each one's row of `dvc exp show`
    (every param and metric by its name, as DVC's Python API gives them)."""
    from dvc.api import exp_show  # lazily: ~0.4 s, and only the sweep needs it

    return {row["Experiment"]: row for row in exp_show(revs=baseline) if row.get("Experiment")}


def fetch_base_artifacts(rev: str, paths: Sequence[str], into: Path) -> str:
    """Copy the files `paths` of commit `rev` into `into` (same relative paths); say whence.

    They come from the DVC cache or a remote of this workspace when they are there; otherwise
    the base is reproduced in a temporary git worktree with its own cache, removed afterwards.
    """
    from dvc.api import read  # lazily: ~0.4 s, and only this function needs DVC's Python API
    from dvc.exceptions import PathMissingError

    recorded = _recorded_md5(rev, paths)
    config = _remote_config()
    try:
        found = {path: read(path, rev=rev, mode="rb", config=config) for path in paths}
    except PathMissingError:
        _reproduce_in_worktree(rev, paths, into)
        for path in paths:
            if _md5((into / path).read_bytes()) != recorded[path]:
                raise PipelineError(
                    f"{path} of {rev[:7]}: reproduced in a temporary worktree, it differs from "
                    "what its dvc.lock records; that commit does not reproduce on this machine"
                ) from None
        return "reproduced in a temporary git worktree (not in the DVC cache or a remote)"
    for path, data in found.items():
        actual = _md5(data)
        if actual != recorded[path]:
            raise PipelineError(
                f"{path} of {rev[:7]}: the copy in the DVC cache (or remote) is corrupt: md5 "
                f"{actual}, dvc.lock records {recorded[path]}; delete "
                f"{cache_path(recorded[path])} and run again to fetch or rebuild it"
            )
        target = into / path
        make_folder(target.parent)
        target.write_bytes(data)
    return "read from the DVC cache or remote"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def recorded_outputs(rev: str | None) -> dict[str, str]:
    """The md5 of every DVC output that commit `rev`'s dvc.lock records (None: the
    workspace's dvc.lock), by path."""
    if rev is None:
        text = Path("dvc.lock").read_text()
    else:
        text = _run(["git", "show", f"{rev}:dvc.lock"]).stdout
    lock = yaml.safe_load(text)
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", ())
    }


def _recorded_md5(rev: str, paths: Sequence[str]) -> dict[str, str]:
    """The md5 that commit `rev`'s dvc.lock records for each of `paths` (DVC outputs)."""
    outs = recorded_outputs(rev)
    missing = [path for path in paths if path not in outs]
    if missing:
        raise PipelineError(
            f"BASE = {rev[:7]}: its dvc.lock records no {', '.join(missing)}; "
            "compare with a revision whose pipeline was reproduced and committed"
        )
    return {path: outs[path] for path in paths}


def cache_path(md5: str) -> str:
    """Where this workspace's DVC cache keeps the file of that md5."""
    from dvc.repo import Repo

    with Repo() as repo:
        return str(repo.cache.local.oid_to_path(md5))


def _remote_config() -> dict[str, Any] | None:
    """This workspace's default remote (from .dvc/config or config.local), so that reads at
    another revision may use a remote configured after that revision was committed."""
    from dvc.repo import Repo

    with Repo() as repo:
        default = repo.config["core"].get("remote")
        if not default:
            return None  # DVC then reads the workspace's cache alone
        return {"core": {"remote": default}, "remote": {default: repo.config["remote"][default]}}


def _pull_sources(worktree: Path) -> None:
    """Into the worktree, the files that `dvc add` tracks there (a CSV source): the pipeline
    reads them and cannot rebuild them. From this workspace's cache (it holds the ones the
    workspace uses), else from the worktree's default remote."""
    sources = _run(["git", "ls-files", "*.dvc"], cwd=worktree).stdout.split()
    if not sources:
        return
    from dvc.repo import Repo

    with Repo() as repo:
        cache = repo.cache.local_cache_dir  # laid out as a local remote is
    remote = "linreg-workspace-cache"
    run_shown(["dvc", "remote", "add", "--local", remote, cache], cwd=worktree)
    pulled = _run(["dvc", "pull", "--quiet", "--remote", remote, *sources], cwd=worktree)
    if pulled.returncode != 0:
        run_shown(["dvc", "pull", "--quiet", *sources], cwd=worktree)


def _reproduce_in_worktree(rev: str, paths: Sequence[str], into: Path) -> None:
    parent = Path(tempfile.mkdtemp(prefix="linreg-base-"))
    worktree = parent / "base"
    try:
        run_shown(["git", "worktree", "add", "--quiet", "--detach", str(worktree), rev])
        _pull_sources(worktree)
        run_shown(["dvc", "repro", "--quiet"], cwd=worktree)
        for path in paths:
            target = into / path
            make_folder(target.parent)
            shutil.copyfile(worktree / path, target)
    finally:
        if worktree.exists():
            _run(["git", "worktree", "remove", "--force", str(worktree)])
        if parent.exists():
            shutil.rmtree(parent)
        _run(["git", "worktree", "prune"])
