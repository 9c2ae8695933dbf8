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


@pytest.mark.slow
def test_the_readmes_runnable_blocks_run(project):
    blocks = RUNNABLE.findall((ROOT / "README.md").read_text())
    assert len(blocks) >= 2  # the daily loop and the trained model's use
    for block in blocks:
        run(project, "bash", "-e", "-c", block)
