"""Each stage imports only what it needs, and dvc.yaml lists every library module it imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from .conftest import ROOT

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = sorted(DVC_YAML["stages"])

# What a stage loads just by importing its script (what runs before main does any work).
PROBE = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="probe")
print(json.dumps(sorted(sys.modules)))
"""

HEAVY = {"torch": {"train", "evaluate"}, "matplotlib": {"plot"}, "pandas": set()}


def imported_modules(stage: str) -> set[str]:
    script = ROOT / "stages" / f"{stage}.py"
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(script)], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("stage", STAGES)
def test_deps_list_exactly_the_library_modules_imported(stage):
    modules = imported_modules(stage)
    used = {f"src/{name.replace('.', '/')}.py" for name in modules if name.startswith("linreg.")}
    deps = {dep for dep in DVC_YAML["stages"][stage]["deps"] if dep.startswith("src/")}
    assert used == deps
    assert f"stages/{stage}.py" in DVC_YAML["stages"][stage]["deps"]


@pytest.mark.parametrize("stage", STAGES)
def test_heavy_libraries_only_where_needed(stage):
    modules = imported_modules(stage)
    for library, allowed in HEAVY.items():
        assert (library in modules) == (stage in allowed), f"{stage} and {library}"


def test_package_init_imports_nothing():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, linreg; print(sorted(m for m in sys.modules if m.startswith(('torch', 'numpy', 'linreg.'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
