"""What a stage loads just by importing its script (what runs before its main does any work),
or what importing a module loads: the names in sys.modules afterwards, as a JSON list.

    python -m tests.programs.import_probe stages/NAME.py | MODULE
"""

import importlib
import json
import runpy
import sys

if __name__ == "__main__":
    target = sys.argv[1]
    if target.endswith(".py"):
        runpy.run_path(target, run_name="probe")
    else:
        importlib.import_module(target)
    print(json.dumps(sorted(sys.modules)))
