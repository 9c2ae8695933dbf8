"""Imports a stage will need, started in a thread while the stage reads its data.

torch.optim imports torch._dynamo the first time an optimizer is built (add_param_group),
steps or zeroes its gradients (torch._disable_dynamo defers that import from torch's own to the
first call): most of a second of pure Python here, which a train stage would pay when fit
builds its optimizer. Started before the stage reads its CSVs, the import runs while pyarrow
parses them outside the GIL: at 10^7 rows the reading hides it. The optimizer then finds the
module imported, or waits on Python's import lock for the rest of it: never imports it twice.
"""

from __future__ import annotations

import importlib
import threading

OPTIMIZER_IMPORTS = ("torch._dynamo",)


def start_importing(modules: tuple[str, ...] = OPTIMIZER_IMPORTS) -> threading.Thread:
    """Import `modules` in a daemon thread, now; an import that fails there fails again, with
    its traceback, where the stage imports it itself."""
    thread = threading.Thread(target=_import_all, args=(modules,), name="preload", daemon=True)
    thread.start()
    return thread


def _import_all(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(module)
