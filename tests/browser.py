"""`dvc plots` pages and Mermaid charts opened in a real browser: headless Chromium (Debian's
package, which .ci/run installs when it is missing), with no network, and what the scripts
drew."""

from __future__ import annotations

import json
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


def plot_div(dom: str, path: str) -> str:
    """The div of the plot of `path` in `dom`, as the page's scripts left it."""
    start = dom.find(f'id="{div_id(path)}"')
    assert start >= 0, f"no div for {path}"
    following = dom.find('<div id="reports_', start + 1)  # our plots are all under reports/
    return dom[start : following if following > 0 else len(dom)]


def drawn(dom: str, path: str) -> Drawn:
    """What the div of the plot of `path` holds in `dom`."""
    div = plot_div(dom, path)
    marks = re.findall(r'<g[^>]*class="mark-(?:line|symbol)[^"]*"[^>]*>(.*?)</g>', div)
    legend = re.findall(r"<text[^>]*>([^<]*)</text>", div)
    captions = re.findall(r"<p>([^<]*)</p>", div)[1:]  # the first names the plot
    return Drawn(
        marks=sum(1 for group in marks if re.search(r'<path[^>]*\bd="M', group)),
        images=div.count("<img"),
        revisions=[text for text in legend + captions if text in ("workspace", "HEAD")],
    )


# mermaid's own JavaScript, as `make dev` installs it from the npm registry (tests/js)
MERMAID_JS = ROOT / "tests/js/node_modules/mermaid/dist/mermaid.min.js"
NO_MERMAID = "no mermaid JavaScript for the chart tests: make dev, with npm on PATH"
# A GitHub comment's width, in CSS pixels
COMMENT_WIDTH = 880


def mermaid() -> Path:
    """mermaid.min.js; without it the chart tests skip, saying how to get it (in CI they fail:
    .ci/run's make test installs it)."""
    if not MERMAID_JS.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{NO_MERMAID} (CI must run them)")
        pytest.skip(NO_MERMAID)
    return MERMAID_JS


@dataclass(frozen=True)
class Chart:
    """An xychart as Mermaid drew it: SVG coordinates, y growing downwards."""

    x_ticks: list[tuple[float, float]]  # (value, x) of each x axis label
    y_ticks: list[tuple[float, float]]  # (value, y) of each y axis label
    lines: list[tuple[str, list[tuple[float, float]]]]  # (stroke colour, points) per line

    def values(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """The points in the axes' units, by the linear scales their labels give."""
        (x0, px0), (x1, px1) = self.x_ticks[0], self.x_ticks[-1]
        (y0, py0), (y1, py1) = self.y_ticks[0], self.y_ticks[-1]
        return [
            (x0 + (x - px0) * (x1 - x0) / (px1 - px0), y0 + (y - py0) * (y1 - y0) / (py1 - py0))
            for x, y in points
        ]


def mermaid_charts(chromium: str, markdown: str, screenshot: Path | None = None) -> list[Chart]:
    """The xychart blocks of `markdown`, drawn by mermaid in `chromium` at a comment's width
    with no network (and a screenshot of them, where asked)."""
    blocks = re.findall(r"```mermaid\n(.*?)```", markdown, re.DOTALL)
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "charts.html"
        page.write_text(_MERMAID_PAGE.format(script=mermaid().as_uri(), blocks=json.dumps(blocks)))
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", *NO_NETWORK,
            f"--user-data-dir={folder}/profile", "--virtual-time-budget=30000",
            f"--window-size={COMMENT_WIDTH},{700 * len(blocks)}",
        ]  # fmt: skip
        if screenshot:
            subprocess.run([*command, f"--screenshot={screenshot}", page.as_uri()], check=True,
                           capture_output=True, timeout=300)  # fmt: skip
        dom = subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True,
                             text=True, check=True, timeout=300).stdout  # fmt: skip
    assert 'data-done="1"' in dom, re.findall(r'data-error="([^"]*)"', dom) or dom[-2000:]
    return [_chart(svg) for svg in re.findall(r"<svg.*?</svg>", dom, re.DOTALL)]


_MERMAID_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><script src="{script}"></script></head>
<body style="margin: 0"><div id="charts"></div><script>
mermaid.initialize({{startOnLoad: false}});
(async () => {{
  for (const [i, block] of {blocks}.entries()) {{
    const {{svg}} = await mermaid.render("chart" + i, block);
    document.getElementById("charts").insertAdjacentHTML("beforeend", svg);
  }}
  document.body.dataset.done = "1";
}})().catch(error => {{ document.body.dataset.error = String(error); }});
</script></body></html>
"""


def _chart(svg: str) -> Chart:
    def ticks(axis: str, coordinate: str) -> list[tuple[float, float]]:
        group = re.search(rf'<g class="{axis}">.*?<g class="label">(.*?)</g>', svg, re.DOTALL)
        assert group, f"no {axis} labels"
        found = re.findall(r'<text[^>]*translate\(([-\d.]+), ?([-\d.]+)\)[^>]*>([^<]*)</text>',
                           group.group(1))  # fmt: skip
        index = 0 if coordinate == "x" else 1
        return [(float(text.replace("\u2212", "-")), float(xy[index])) for *xy, text in found]

    lines = []
    for path in re.findall(r'<g class="line-plot-\d+">(.*?)</g>', svg, re.DOTALL):
        d, stroke = re.search(r'd="([^"]*)"[^>]*stroke="([^"]*)"', path).groups()
        points = [(float(x), float(y)) for x, y in re.findall(r"([-\d.]+),([-\d.]+)", d)]
        lines.append((stroke, points))
    return Chart(ticks("bottom-axis", "x"), ticks("left-axis", "y"), lines)


def image_widths(chromium: str, html: str, width: int = 1400) -> list[tuple[int, int]]:
    """(natural, drawn) width in CSS pixels of each image of a page, opened in `chromium` in a
    window `width` pixels wide, with no network."""
    measure = (
        "<script>document.body.dataset.widths = JSON.stringify([...document.images].map("
        "image => [image.naturalWidth, image.getBoundingClientRect().width]));</script>"
    )
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "page.html"
        page.write_text(html.replace("</body>", measure + "</body>"))
        dom = subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", *NO_NETWORK,
                f"--user-data-dir={folder}/profile", "--virtual-time-budget=30000",
                f"--window-size={width},900", "--dump-dom", page.as_uri(),
            ],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout  # fmt: skip
    found = re.search(r'data-widths="([^"]*)"', dom)
    assert found, dom[-2000:]
    return [tuple(pair) for pair in json.loads(found.group(1).replace("&quot;", '"'))]
