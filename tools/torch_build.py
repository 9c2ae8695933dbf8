"""Install the build of torch that fits this machine into the running venv: CPU where no NVIDIA
GPU is visible, the CUDA build its driver can run where one is, or the build `TORCH` names.

    .venv/bin/python -m tools.torch_build            # what every make target runs first
    TORCH=cu128 make repro                           # ask for another build: torch alone reinstalls
    python3 -m tools.torch_build --dry-run           # which build, and why; installs nothing

The installed version's build label (2.13.0+cpu, 2.13.0+cu130) is the venv's record of which
build it holds: a venv that holds the pinned version with a label keeps it until `TORCH` asks
for another. Standard library only: it runs before the venv has anything else.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# PyTorch's wheel indexes, one a build: https://download.pytorch.org/whl/cpu, .../cu130, ...
PYTORCH_INDEX = "https://download.pytorch.org/whl/{build}"
# The CUDA builds of the pinned torch, newest first, with the oldest Linux driver that runs each
# (NVIDIA's CUDA release notes, table 2: CUDA 13.x needs 580, 12.x 525.60.13 through minor
# version compatibility). An older driver gets the CPU build.
CUDA_BUILDS = (("cu130", (580,)), ("cu128", (525, 60, 13)))
ALLOWED = "cpu, auto or a CUDA build such as " + ", ".join(build for build, _ in CUDA_BUILDS)
PROC_DRIVER = Path("/proc/driver/nvidia/version")


class BuildError(Exception):
    """A `TORCH` value that names no build: one line for the user."""


@dataclass(frozen=True)
class Choice:
    """The build to install ('cpu', 'cu130', ... or '' for the index's default) and why."""

    build: str
    reason: str

    def version(self, pinned: str) -> str:
        """The installed version this build of the pinned one has: 2.13.0+cpu, or 2.13.0."""
        return f"{pinned}+{self.build}" if self.build else pinned

    def requirement(self, pinned: str) -> str:
        return f"torch=={self.version(pinned)}"


def pinned_version(pyproject: Path = PYPROJECT) -> str:
    """The exact torch version pyproject.toml pins (`torch==X`)."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pin = next(d for d in dependencies if re.match(r"torch\s*==", d))
    return pin.split("==", 1)[1].strip()


def driver_version(smi_output: str | None, proc_text: str | None) -> tuple[int, ...] | None:
    """The NVIDIA driver's version from `nvidia-smi --query-gpu=driver_version` (one line a
    GPU) or, without nvidia-smi, from /proc/driver/nvidia/version; None where neither has one."""
    for text in (smi_output, proc_text):
        found = re.search(r"\b(\d{3,})\.(\d+)(?:\.(\d+))?\b", text or "")
        if found:
            return tuple(int(part) for part in found.groups() if part is not None)
    return None


def detect_driver() -> tuple[int, ...] | None:
    """This machine's NVIDIA driver version, or None where no NVIDIA GPU is visible."""
    smi_output = None
    if smi := shutil.which("nvidia-smi"):
        query = [smi, "--query-gpu=driver_version", "--format=csv,noheader"]
        result = subprocess.run(query, capture_output=True, text=True, check=False, timeout=60)
        smi_output = result.stdout if result.returncode == 0 else ""
    proc_text = PROC_DRIVER.read_text() if smi is None and PROC_DRIVER.is_file() else None
    return driver_version(smi_output, proc_text)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def choose(
    requested: str, installed: str | None, pinned: str, driver: tuple[int, ...] | None, system: str
) -> Choice:
    """The build to hold: the one `requested` (TORCH) names; else the build already installed
    at the pinned version; else the one this machine's driver (None: no GPU) runs."""
    requested = requested.strip().lower()
    if requested and requested != "auto":
        if requested != "cpu" and not re.fullmatch(r"cu\d{3}", requested):
            raise BuildError(f"TORCH={requested}: no such torch build; allowed: {ALLOWED}")
        return Choice(requested, "TORCH asks for it")
    if not requested and installed is not None:
        version, _, label = installed.partition("+")
        if version == pinned and (label or system != "Linux"):
            return Choice(label, "installed")
    if system != "Linux":
        # PyPI's macOS and Windows wheels are the CPU (and MPS) builds: no index to choose
        return Choice("", f"PyPI's build for {system}")
    if driver is None:
        return Choice("cpu", "no NVIDIA GPU found")
    for build, oldest in CUDA_BUILDS:
        if driver >= oldest:
            return Choice(build, f"NVIDIA driver {_dotted(driver)}")
    oldest_cuda = _dotted(CUDA_BUILDS[-1][1])
    return Choice("cpu", f"NVIDIA driver {_dotted(driver)} is older than CUDA's {oldest_cuda}")


def announcement(choice: Choice) -> str:
    """The one line make prints before it installs torch."""
    if choice.build == "cpu":
        other = f"TORCH={CUDA_BUILDS[0][0]} for CUDA"
        return f"torch: CPU build ({choice.reason}); {other}"
    if choice.build:
        return f"torch: CUDA build {choice.build} ({choice.reason}); TORCH=cpu for the CPU build"
    return f"torch: {choice.reason}"


def installed_version() -> str | None:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def install(choice: Choice, version: str) -> None:
    """pip-install the chosen build into this venv: first from the sources pip's own
    configuration gives (a mirror, a wheel folder), then from PyTorch's index for the build.
    The CPU build alone, without its requirements: the pinned requirements files hold them; a
    CUDA build brings the CUDA libraries it pins."""
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--no-deps"] if choice.build == "cpu" else []
    pip.append(choice.requirement(version))
    if choice.build and subprocess.run(pip, capture_output=True, check=False).returncode == 0:
        return
    index = ["--extra-index-url", PYTORCH_INDEX.format(build=choice.build)] if choice.build else []
    if subprocess.run(pip + index, check=False).returncode != 0:
        raise BuildError(f"pip could not install {choice.requirement(version)} (above)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="say which build; install none")
    args = parser.parse_args(argv)
    try:
        version = pinned_version()
        installed = installed_version()
        system = platform.system()
        driver = detect_driver() if system == "Linux" else None
        choice = choose(os.environ.get("TORCH", ""), installed, version, driver, system)
        if installed == choice.version(version) and not args.dry_run:
            return 0
        print(announcement(choice), flush=True)
        if not args.dry_run:
            install(choice, version)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
