"""`dvc plots show` and `dvc plots diff` draw every declared plot offline, in a real browser
(a CSV source's: tests/test_own_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import browser as browser_module
from .browser import browser, declared_plots, drawn, plots_page_dom


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
