"""The params file, read: params.yaml as text, validated by linreg.core.params."""

from __future__ import annotations

from pathlib import Path

from linreg.core.errors import not_utf8
from linreg.core.params import Params, params_from_text
from linreg.io.files import read_bytes

# A params file is typed by hand: a thousand features' names or weights are some 20 KB.
PARAMS_BYTES = 1 << 20


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file; any problem is one PipelineError line."""
    data = read_bytes(path, "run from the project root", PARAMS_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(path, data[error.start], error.start) from None
    return params_from_text(text, source=str(path))
