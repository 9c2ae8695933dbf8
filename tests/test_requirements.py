"""The two pinned sets agree with pyproject.toml: each holds exactly what its packages need,
every pin within what asks for it, and the test tools' set pins the pipeline's packages alike.
torch is in neither (tools/torch_build.py installs the build for the machine)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.lock import DEV, PIPELINE

from .helpers import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# The sets make installs, with the extras of pyproject.toml each one holds
SETS = {PIPELINE: ("s3",), DEV: ("s3", "dev")}
TORCH = "torch"


def pins(path: Path) -> dict[str, str]:
    """A requirements file's `name==version` pins, by canonical name."""
    found = re.findall(
        r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\\n]+)", (ROOT / path).read_text(), re.M
    )
    return {canonicalize_name(name): version for name, version in found}


def needed(extras: tuple[str, ...]) -> dict[str, list[Requirement]]:
    """Every package the project's dependencies and `extras` pull in, with the requirements
    that ask for it, read from the installed packages' metadata. torch's own requirements are
    those every build shares (a CUDA build's libraries come with the build)."""
    top = [Requirement(r) for r in PROJECT["dependencies"]]
    top += [Requirement(r) for extra in extras for r in PROJECT["optional-dependencies"][extra]]
    asked: dict[str, list[Requirement]] = {}
    walked: set[tuple[str, frozenset[str]]] = set()
    todo = [(requirement, frozenset({""})) for requirement in top]
    while todo:
        requirement, parent_extras = todo.pop()
        marker = requirement.marker
        if marker and not any(marker.evaluate({"extra": extra}) for extra in parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        asked.setdefault(name, []).append(requirement)
        own_extras = frozenset({"", *requirement.extras})
        if (name, own_extras) in walked:
            continue
        walked.add((name, own_extras))
        requires = [Requirement(r) for r in metadata.requires(name) or []]
        if name == TORCH:
            requires = [r for r in requires if r.marker is None]
        todo += [(r, own_extras) for r in requires]
    return asked


@pytest.mark.parametrize("path", SETS, ids=str)
def test_each_set_pins_exactly_what_pyproject_needs_within_every_requirement(path: Path):
    pinned = pins(path)
    asked = needed(SETS[path])
    assert set(pinned) == set(asked) - {TORCH}, (
        f"{path} and pyproject.toml disagree: run `make lock` (missing: "
        f"{sorted(set(asked) - {TORCH} - set(pinned))}, not needed: {sorted(set(pinned) - set(asked))})"
    )
    for name, version in pinned.items():
        assert metadata.version(name) == version, f"{name}: this venv holds another version"
        for requirement in asked[name]:
            assert requirement.specifier.contains(version, prereleases=True), (name, requirement)


def test_the_test_tools_set_pins_the_pipelines_packages_alike():
    pipeline, dev = pins(PIPELINE), pins(DEV)
    assert {name: dev.get(name) for name in pipeline} == pipeline


def test_dvc_parses_yaml_with_the_c_parser():
    """ruamel.yaml.clib is installed and loads: DVC's safe loads of dvc.yaml, dvc.lock and
    params.yaml take its C parser (pure Python otherwise, and no error says so)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.main import CParser

    assert CParser is not None
    assert YAML(typ="safe").Parser is CParser
