"""Each stage imports only what it needs, and dvc.yaml lists every library module it imports;
the library never imports the experiment tooling above it, and no import goes round."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helpers import ROOT

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = sorted(DVC_YAML["stages"])

# What a stage loads just by importing its script (what runs before main does any work).
PROBE = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="probe")
print(json.dumps(sorted(sys.modules)))
"""

# pydantic: the stages that read params.yaml
HEAVY = {
    "torch": {"train", "evaluate"},
    "matplotlib": {"plot"},
    "pandas": set(),
    "pydantic": {"validate", "generate", "split", "train", "plot"},
}


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


def linreg_imports(module: Path) -> set[str]:
    """The linreg modules that `module` imports, anywhere in it (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "linreg"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in (ROOT / "src").rglob("*.py")}


def test_the_library_never_imports_the_experiment_tooling():
    library = [name for name in SOURCES if not name.startswith("linreg.experiments")]
    assert len(library) > 10
    for name in library:
        above = {m for m in linreg_imports(SOURCES[name]) if m.startswith("linreg.experiments")}
        assert not above, f"{name} imports {above}"


def test_the_import_graph_has_no_cycle():
    graph = {name: linreg_imports(path) & SOURCES.keys() for name, path in SOURCES.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for imported in graph[name]:
                visit(imported, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())
