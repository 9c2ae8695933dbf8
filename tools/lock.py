"""Regenerate the two pinned requirement sets from pyproject.toml (`make lock`):

    requirements/pipeline.txt   what `make repro` installs: the dependencies and the s3 extra
    requirements/dev.txt        what `make test` adds: the dev extra, every shared pin the same

Every package pinned exactly, with the hashes of all its files. Pins already in a file are
kept; `make lock ARGS=--upgrade` (or `--upgrade-package NAME`) moves them. torch is left out of
both: tools/torch_build.py installs the build that fits the machine, so the files hold the
requirements every build shares (those of the CPU build, resolved from PyTorch's CPU index).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from tools.torch_build import PYTORCH_INDEX, pinned_version

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = Path("requirements/pipeline.txt")
DEV = Path("requirements/dev.txt")
# pip-compile's closing words on the unpinned torch, and what we say instead
UNPINNED = re.compile(r"\n# WARNING: The following packages were not pinned.*\Z", re.DOTALL)
TORCH_NOTE = "\n# torch: tools/torch_build.py installs the build that fits the machine.\n"


def cpu_index() -> list[str]:
    """PyTorch's CPU index as pip's option, or nothing where it cannot be reached (pip would
    retry it for every package): pip's own configuration must then provide the CPU build."""
    index = PYTORCH_INDEX.format(build="cpu")
    try:
        urllib.request.urlopen(f"{index}/torch/", timeout=10).close()
    except OSError as error:
        print(f"{index} unreachable ({error}): torch from pip's own configuration")
        return []
    return ["--extra-index-url", index]


def compile_set(output: Path, extras: list[str], constraints: list[Path], args: list[str]) -> None:
    """pip-compile pyproject.toml with `extras` into `output`, torch left out."""
    command = [sys.executable, "-m", "piptools", "compile", "--quiet", "pyproject.toml"]
    command += ["--output-file", str(output), "--generate-hashes", "--strip-extras"]
    command += ["--no-emit-index-url", "--no-emit-find-links", "--no-allow-unsafe"]
    command += ["--unsafe-package", "torch"]  # replaces pip and setuptools: those are pinned
    command += [f"--extra={extra}" for extra in extras]
    command += [f"--constraint={path}" for path in constraints]
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"}
    subprocess.run(command + args, cwd=ROOT, env=env, check=True)
    text = (ROOT / output).read_text()
    (ROOT / output).write_text(UNPINNED.sub(TORCH_NOTE, text))


def main() -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as torch_cpu:
        torch_cpu.write(f"torch=={pinned_version()}+cpu\n")
        torch_cpu.flush()
        args = cpu_index() + sys.argv[1:]
        compile_set(PIPELINE, ["s3"], [Path(torch_cpu.name)], args)
        compile_set(DEV, ["s3", "dev"], [Path(torch_cpu.name), PIPELINE], args)


if __name__ == "__main__":
    main()
