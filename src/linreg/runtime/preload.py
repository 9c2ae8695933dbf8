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


def start_importing() -> None:
    """Import torch._dynamo in a daemon thread, now; an import that fails there fails again,
    with its traceback, where torch.optim imports it itself."""
    threading.Thread(target=importlib.import_module, args=("torch._dynamo",), daemon=True).start()
