"""`dvc plots show` and `dvc plots diff` draw every declared plot offline, in a real browser
(a CSV source's: tests/test_own_data.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import browser as browser_module
from .browser import browser, declared_plots, drawn, plot_div, plots_page_dom
from .helpers import set_param


@pytest.mark.slow
def test_plots_diff_draws_both_revisions_of_every_plot_offline(chromium: str, project: Path):
    dom = plots_page_dom(chromium, project, "diff", "HEAD")
    for path in declared_plots():
        plot = drawn(dom, path)
        assert sorted(set(plot.revisions)) == ["HEAD", "workspace"], path
        if path.endswith(".png"):
            assert plot.images == 2, path  # one a revision, side by side
        else:
            assert plot.marks >= 1, path


def test_without_a_browser_the_browser_tests_skip_and_in_ci_fail(monkeypatch):
    monkeypatch.setattr(browser_module, "CHROMIUM", None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run them"):
        browser()


@pytest.mark.slow
def test_the_charts_read_at_a_glance(chromium: str, project: Path):
    """At least 600 pixels wide; the train and test loss in two colours a legend names, on an
    axis that names the loss; predicted against actual on axes of one range."""
    set_param(project, "train.loss", "mse")  # the axis follows train.loss
    dom = plots_page_dom(chromium, project, "show")
    for path in declared_plots():
        if not path.endswith(".png"):
            width = re.search(r'<svg[^>]*class="marks"[^>]*width="(\d+)"', plot_div(dom, path))
            assert int(width.group(1)) >= 600, path
    loss = plot_div(dom, "reports/train_log.csv")
    lines = re.findall(r'<g[^>]*class="mark-line[^"]*"[^>]*>(.*?)</g>', loss)
    strokes = {re.search(r'stroke="([^"]*)"', line).group(1) for line in lines}
    assert len(strokes) == 2
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", loss)
    assert {"train loss", "test loss", "mse loss (log scale)"} <= set(texts)
    points = plot_div(dom, "reports/predicted_vs_actual.csv")
    ranges = re.findall(
        r"-axis titled '[^']*' for a linear scale with values from ([^\"]*)\"", points
    )
    assert len(ranges) == 2
    assert ranges[0] == ranges[1]  # x and y: one range
