"""The params file, read: params.yaml as text, validated by linreg.core.params."""

from __future__ import annotations

from pathlib import Path

from linreg.core.errors import PipelineError, not_utf8
from linreg.core.params import Params, params_from_text


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file; any problem is one PipelineError line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found (run from the project root)") from None
    except UnicodeDecodeError as error:
        raise not_utf8(path, error.object[error.start], error.start) from None
    return params_from_text(text, source=str(path))
