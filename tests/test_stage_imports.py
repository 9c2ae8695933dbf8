"""Each stage imports only what it needs, and dvc.yaml lists every library module it imports;
the library's three layers import downwards only (core <- io <- runtime), none of them imports
the experiment tooling above it, and no import goes round."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from harness.project import run_module

from .helpers import ROOT

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = sorted(DVC_YAML["stages"])

# pydantic: the stages that read params.yaml
HEAVY = {
    "torch": {"train", "evaluate"},
    "matplotlib": {"plot"},
    "pandas": set(),
    "pydantic": {"validate", "generate", "split", "train", "evaluate", "plot"},
}


def imported_modules(stage: str) -> set[str]:
    """What importing the stage's script loads (tests/programs/import_probe.py)."""
    out = run_module("tests.programs.import_probe", str(ROOT / "stages" / f"{stage}.py")).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("stage", STAGES)
def test_deps_list_exactly_the_library_modules_imported(stage):
    """Every module but the packages' __init__, which hold a docstring alone (tested below)."""
    modules = imported_modules(stage) & MODULES.keys()
    used = {str(MODULES[name].relative_to(ROOT)) for name in modules}
    deps = {dep for dep in DVC_YAML["stages"][stage]["deps"] if dep.startswith("src/")}
    assert used == deps
    assert f"stages/{stage}.py" in DVC_YAML["stages"][stage]["deps"]


@pytest.mark.parametrize("stage", STAGES)
def test_heavy_libraries_only_where_needed(stage):
    modules = imported_modules(stage)
    for library, allowed in HEAVY.items():
        assert (library in modules) == (stage in allowed), f"{stage} and {library}"


def test_package_init_imports_nothing():
    loaded = json.loads(run_module("tests.programs.import_probe", "linreg").stdout)
    assert [name for name in loaded if name.startswith(("torch", "numpy", "linreg."))] == []


def absolute_imports(module: Path) -> set[str]:
    """The modules that `module` imports by absolute name, anywhere in it (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def linreg_imports(module: Path) -> set[str]:
    """The linreg modules that `module` imports, anywhere in it (lazy imports too)."""
    return {name for name in absolute_imports(module) if name.split(".")[0] == "linreg"}


def test_tests_and_benchmarks_share_only_the_harness():
    """bench/ and tests/ import nothing of each other: what both need is in harness/, which
    imports neither."""
    for folder, others in (
        ("bench", {"tests"}),
        ("tests", {"bench"}),
        ("harness", {"tests", "bench"}),
    ):
        modules = list((ROOT / folder).glob("*.py"))
        assert modules, folder
        for module in modules:
            tops = {name.split(".")[0] for name in absolute_imports(module)}
            assert not tops & others, f"{module.relative_to(ROOT)} imports {tops & others}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in (ROOT / "src").rglob("*.py")}
MODULES = {name: path for name, path in SOURCES.items() if path.name != "__init__.py"}
# The library's layers, lowest first: each imports only the layers below it and itself.
LAYERS = ("linreg.core", "linreg.io", "linreg.runtime")


def layer(name: str) -> int | None:
    return next((i for i, top in enumerate(LAYERS) if name.startswith(top + ".")), None)


def test_each_layer_imports_only_the_layers_below_it():
    for name, path in MODULES.items():
        own = layer(name)
        if own is None:
            continue
        above = {m for m in linreg_imports(path) if (layer(m) or -1) > own}
        assert not above, f"{name} (layer {LAYERS[own]}) imports {above}"
    assert len([name for name in MODULES if layer(name) is not None]) > 20


def test_ls_shows_the_layers_and_the_package_inits_say_what_each_holds():
    """src/linreg holds the three layers, the experiment tooling and predict's entry point; a
    package's __init__ is its docstring alone (so no stage depends on it)."""
    package = ROOT / "src/linreg"
    assert sorted(p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__") == [
        "core",
        "experiments",
        "io",
        "runtime",
    ]
    for init in package.rglob("__init__.py"):
        statements = ast.parse(init.read_text()).body
        assert [type(statement) for statement in statements] == [ast.Expr], init


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


def test_stages_are_adapters_and_fit_is_the_lessons_loop():
    """A stage script stays an adapter (at most 40 lines); fit shows the lesson's loop itself on
    one screen (at most 40 lines: train mode, forward and loss, zero_grad, backward, step, eval
    mode and the test loss under inference_mode), and its module stays short (at most 250)."""
    for script in sorted((ROOT / "stages").glob("*.py")):
        assert len(script.read_text().splitlines()) <= 40, script.name
    training_source = MODULES["linreg.core.training"].read_text()
    assert len(training_source.splitlines()) <= 250
    training = ast.parse(training_source)
    (fit,) = [
        node for node in training.body if isinstance(node, ast.FunctionDef) and node.name == "fit"
    ]
    assert len(ast.get_source_segment(training_source, fit).splitlines()) <= 40
    calls = [node.func for node in ast.walk(fit) if isinstance(node, ast.Call)]
    methods = {call.attr for call in calls if isinstance(call, ast.Attribute)}
    assert {"train", "zero_grad", "backward", "step", "eval", "inference_mode"} <= methods
    assert {"trained", "model", "loss_fn"} <= {c.id for c in calls if isinstance(c, ast.Name)}
