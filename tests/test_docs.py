"""The docs cannot drift: README stays a front door, every link resolves, and the shell blocks
marked runnable run (in a copy of the reproduced project) and exit 0."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .helpers import ROOT, run

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
RUNNABLE = re.compile(r"<!-- runnable[^>]*-->\n```bash\n(.*?)```", re.DOTALL)


def anchors(page: Path) -> set[str]:
    """The fragments GitHub gives the page's headings (lowercase, punctuation gone, - for space)."""
    headings = re.findall(
        r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL), re.M
    )
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_the_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_resolves(page: Path):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # a URL: not ours to check offline
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if fragment:
            assert fragment in anchors(linked), f"{page.name}: {target}"


def runnable_blocks(page: Path) -> list[str]:
    return RUNNABLE.findall(page.read_text())


@pytest.mark.slow
def test_the_readmes_runnable_blocks_run(project):
    blocks = runnable_blocks(ROOT / "README.md")
    assert len(blocks) >= 2  # the daily loop and the trained model's use
    for block in blocks:
        run(project, "bash", "-e", "-c", block)


@pytest.mark.slow
def test_the_way_back_after_a_workspace_experiment_leaves_nothing_changed(project):
    """After `dvc exp run` in the workspace (params.yaml, dvc.lock, the outputs and the metrics
    and pictures git tracks all change), the documented way back leaves git and DVC clean."""
    run(project, "dvc", "exp", "run", "-S", "train.lr=0.1")
    assert run(project, "git", "status", "--porcelain").stdout  # it changed the workspace
    (block,) = runnable_blocks(ROOT / "docs/when-something-goes-wrong.md")
    output = run(project, "bash", "-e", "-c", block).stdout
    assert "Data and pipelines are up to date" in output
    assert run(project, "git", "status", "--porcelain").stdout == ""
