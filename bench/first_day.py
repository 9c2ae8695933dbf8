"""Benchmark: the first day on a fresh machine, a revision against another, side by side.

For each revision: a fresh clone, an empty pip cache of its own (every package comes from the
same wheel sources: pip's configuration and the index), then `make repro` timed, and the venv's
packages counted and its size measured; then what `make test` installs on top of it (`make
dev`), timed, counted and measured the same way. Prints one table and the ratios.
Usage: python -m bench.first_day [--against REV] [REV]   (default: a313552, before the two
locked sets, against HEAD)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD = "a313552"  # one requirements.txt: every package for every target
# Where a test tool is found, it was installed: make repro must install none
TEST_TOOLS = ("pytest", "mypy", "ruff", "hypothesis", "moto", "scikit-learn", "statsmodels")


@dataclass(frozen=True)
class Install:
    seconds: float
    packages: set[str]
    megabytes: float


def measured(clone: Path, target: str, env: dict[str, str]) -> Install:
    """`make target` in `clone`, timed; the venv's packages and size after it."""
    start = time.perf_counter()
    subprocess.run(["make", target], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    listed = subprocess.run(
        [clone / ".venv/bin/python", "-m", "pip", "list", "--format=freeze"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    packages = {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}
    size = subprocess.run(["du", "-sb", clone / ".venv"], capture_output=True, text=True)
    return Install(seconds, packages, int(size.stdout.split()[0]) / 2**20)


def first_day(revision: str, folder: Path) -> tuple[Install, Install | None]:
    """`make repro`, then `make dev` where the revision has it, from nothing."""
    clone = folder / revision
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", revision], cwd=clone, check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv_bin = str(ROOT / ".venv/bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env["PIP_CACHE_DIR"] = str(folder / f"pip-cache-{revision}")
    repro = measured(clone, "repro", env)
    has_dev = "\ndev:" in (clone / "Makefile").read_text()
    return repro, measured(clone, "dev", env) if has_dev else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=OLD, help="the revision to compare with")
    parser.add_argument("revision", nargs="?", default="HEAD")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old_repro, _ = first_day(args.against, Path(folder))
        new_repro, new_dev = first_day(args.revision, Path(folder))
    rows: list[tuple[str, float, float]] = [
        ("make repro: seconds", old_repro.seconds, new_repro.seconds),
        ("make repro: packages", len(old_repro.packages), len(new_repro.packages)),
        ("make repro: .venv MiB", old_repro.megabytes, new_repro.megabytes),
    ]
    if new_dev is not None:  # before, make repro installed everything make test needs
        added = len(new_dev.packages - new_repro.packages)
        rows += [
            ("make test's extra install: seconds", 0, new_dev.seconds),
            ("make test's extra install: packages", 0, added),
            ("make test's extra install: MiB", 0, new_dev.megabytes - new_repro.megabytes),
        ]
    print(f"| | {args.against} | {args.revision} | ratio |\n|---|---|---|---|")
    for name, old, new in rows:
        ratio = f"{new / old:.2f}" if old else "—"
        print(f"| {name} | {old:.0f} | {new:.0f} | {ratio} |")
    for name, install in ((args.against, old_repro), (args.revision, new_repro)):
        tools = sorted(set(TEST_TOOLS) & install.packages)
        print(f"{name}: make repro installed test tools: {', '.join(tools) or 'none'}")


if __name__ == "__main__":
    main()
