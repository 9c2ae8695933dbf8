"""The HTML page `dvc plots show` and `dvc plots diff` fill (.dvc/config: plots.html_template),
with Vega, Vega-Lite and Vega-Embed inside it, so that the interactive charts draw with no network.

DVC's own page loads those three from a CDN: offline, only the PNGs appear. The bundle comes from
the pinned vl-convert-python (its javascript_bundle, the same bytes every time), so the page is
made, not fetched, and `make` writes it (python -m linreg.experiments.plots_page PATH).
"""

from __future__ import annotations

from pathlib import Path

from linreg.core.errors import PipelineError
from linreg.io.files import write_bytes_atomic
from linreg.runtime.cli import ArgumentParser, run

# DVC fills {plot_divs} (each chart's div, whose inline script calls vegaEmbed) and, were they
# here, {scripts} (the CDN tags) and {refresh_tag}: this page leaves both out. Charts draw as
# SVG (marks a reader, or a test, can find in the page); the PNGs of several revisions shrink
# to the window's width, so that two revisions stand side by side.
PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>DVC plots</title>
<style>
  body { font-family: sans-serif; margin: 16px; }
  table { border-spacing: 12px; table-layout: fixed; width: 100%; }
  td, th { vertical-align: top; }
  /* an image plot's box holds one box a revision, inline: each takes half the width */
  div[style*="inline-block"] { width: calc(50% - 16px); white-space: normal; vertical-align: top; }
  img { max-width: 100%; height: auto; }
</style>
<script type="text/javascript">
BUNDLE
</script>
</head>
<body>
{plot_divs}
</body>
</html>
"""

# The bundle's own code (ES6, no imports): DVC's inline scripts call the global vegaEmbed; every
# chart is drawn as SVG, whatever options they pass.
GLOBALS = """
window.vega = vega;
window.vegaLite = vegaLite;
window.vegaEmbed = (target, spec, options) =>
    vegaEmbed(target, spec, { renderer: "svg", actions: false, ...options });
"""


def plots_page() -> str:
    """The page: PAGE with vl-convert-python's bundle of Vega, Vega-Lite and Vega-Embed in it."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(GLOBALS)
    for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}", "</script"):
        if placeholder in bundle:  # DVC would fill it, or the browser end the script there
            raise PipelineError(f"the Vega bundle holds {placeholder!r}: it cannot be inlined")
    return PAGE.replace("BUNDLE", bundle)


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m linreg.experiments.plots_page", description=__doc__)
    parser.add_argument("path", type=Path, help="where to write the page (.dvc/plots/page.html)")
    path = parser.parse_args(argv).path
    write_bytes_atomic(path, plots_page().encode())


if __name__ == "__main__":
    run(main)
