"""`dvc plots` pages opened in a real browser: headless Chromium (Debian's package, which
.ci/run installs when it is missing), with no network, and what its scripts drew."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from harness.project import ROOT, project_env

CHROMIUM = next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
)
NO_BROWSER = "no Chromium or Chrome for the browser tests: apt-get install chromium"
# Every request goes to a closed port on this machine: the page has no network.
NO_NETWORK = ("--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")


def browser() -> str:
    """Chromium's (or Chrome's) path. Without one the browser tests skip, saying how to get
    one; in CI (CI set, as GitHub Actions and .ci/run set it) they fail: CI always has one."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail(f"{NO_BROWSER} (CI must run them: .ci/run installs it)")
        pytest.skip(NO_BROWSER)
    return CHROMIUM


def declared_plots() -> list[str]:
    """The paths of dvc.yaml's top-level plots, in order."""
    entries = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    return [entry if isinstance(entry, str) else next(iter(entry)) for entry in entries]


def div_id(path: str) -> str:
    """The id of the div DVC draws a plot in (dvc_render's remove_special_chars)."""
    return re.sub(r"[!@#$%^&*()\[\]{};,<>?\\/:.|`~=_+ ]", "_", path)


@dataclass(frozen=True)
class Drawn:
    """What a plot's div holds once the page's scripts have run."""

    marks: int  # SVG mark groups (lines, points) with a drawn path
    images: int  # PNGs, one per revision
    revisions: list[str]  # the revisions a chart's legend or an image's caption names


def plots_page_dom(chromium: str, project: Path, *command: str) -> str:
    """`dvc plots <command>` in `project` (with its offline page: project.copy_project),
    opened in `chromium`, headless, with no network: the page's DOM after its scripts ran. DVC
    must have warned of nothing (a field a chart names that its file lacks, say)."""
    out = project / "dvc_plots"
    shown = subprocess.run(
        ["dvc", "plots", *command, "-o", str(out)], cwd=project, env=project_env(), check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    assert "WARNING" not in shown.stdout + shown.stderr, shown.stdout + shown.stderr
    html = (out / "index.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc=", html), "the page loads a script from elsewhere"
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", *NO_NETWORK,
                f"--user-data-dir={profile}",
                # virtual time runs only while the page is idle: its scripts finish first,
                # however slow the machine
                "--virtual-time-budget=30000",
                "--dump-dom", (out / "index.html").as_uri(),
            ],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout  # fmt: skip
    return dom


def drawn(dom: str, path: str) -> Drawn:
    """What the div of the plot of `path` holds in `dom`."""
    start = dom.find(f'id="{div_id(path)}"')
    assert start >= 0, f"no div for {path}"
    following = dom.find('<div id="reports_', start + 1)  # our plots are all under reports/
    div = dom[start : following if following > 0 else len(dom)]
    marks = re.findall(r'<g[^>]*class="mark-(?:line|symbol)[^"]*"[^>]*>(.*?)</g>', div)
    legend = re.findall(r"<text[^>]*>([^<]*)</text>", div)
    captions = re.findall(r"<p>([^<]*)</p>", div)[1:]  # the first names the plot
    return Drawn(
        marks=sum(1 for group in marks if re.search(r'<path[^>]*\bd="M', group)),
        images=div.count("<img"),
        revisions=[text for text in legend + captions if text in ("workspace", "HEAD")],
    )
