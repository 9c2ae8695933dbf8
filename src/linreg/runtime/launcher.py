"""Starting the ranks of a process group on this machine (train.nproc > 1), or joining those
torchrun started, and the one line that says which rank failed and why."""

from __future__ import annotations

import logging
import os
import pickle
import re
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import (
    ProcessExitedException,
    ProcessRaisedException,
    start_processes,
)

from linreg.core.errors import PipelineError, shorten, shown
from linreg.core.placement import auto_device, devices_here, join, leave, resolve_device
from linreg.runtime.limits import require_cores
from linreg.runtime.parent import die_with_parent
from linreg.runtime.signals import Terminated, die_by, raise_terminated

# How a traceback's last line starts when a rank raised one of our own errors.
_OURS = f"{PipelineError.__module__}.{PipelineError.__name__}: "


def run_ranks(nproc: int, device: str, work: Callable[[], None]) -> None:
    """Run `work` as one process, or as each rank of a process group: the ranks torchrun
    started (it set our environment), or `nproc` > 1 ranks forked here."""
    if launched():  # by torchrun: it started this machine's processes (train.nproc is not used)
        launch = launch_environment()  # checked before torch reads it
        require_devices(launch.local_world_size, device, "torchrun --nproc-per-node")
        with peer_loss_in_one_line(launch.rank):
            in_group(device, work)
    elif nproc > 1:
        require_cores(nproc, "train.nproc")
        require_devices(nproc, device, "train.nproc")
        spawn(nproc, in_group, device, work)
    else:
        work()


def in_group(device: str, work: Callable[[], None]) -> None:
    """`work` as a rank of the process group the environment describes. A rank that fails
    keeps its connections until its process ends (no finally: leave), so that its peers, whose
    collectives then fail, learn that it has gone only once torch has written its traceback:
    the error the stage reports (spawn's failed_rank), not one its peers raised first."""
    join(resolve_device(device))
    work()
    leave()


@contextmanager
def peer_loss_in_one_line(rank: int) -> Iterator[None]:
    """Under torchrun, a rank whose peer has gone (a killed worker, whose group torchrun then
    restarts) says so in one line, as spawn's stage process says a failed rank's; spawn's own
    ranks leave it to failed_rank, which looks past such a rank for the one that failed."""
    try:
        yield
    except RuntimeError as error:
        lost = _peer_lost(error)
        if lost is None:
            raise
        raise PipelineError(f"train rank {rank}: the process group lost a rank ({lost})") from None


# What torch's collectives (gloo's among them, which raise a plain RuntimeError) say when a
# peer has gone
_PEER_LOST = re.compile(r"Connection (?:reset|closed) by peer|Broken pipe|Socket Timeout")


def _peer_lost(error: RuntimeError) -> str | None:
    """How a collective said that a peer had gone, or None when `error` is something else."""
    found = _PEER_LOST.search(str(error))
    if found:
        return found.group(0)
    if isinstance(error, dist.DistError):
        return shorten((str(error).strip().splitlines() or [type(error).__name__])[0])
    return None


def launched() -> bool:
    """Whether a launcher (torchrun, or our spawn) started this process as one of several."""
    return "RANK" in os.environ or "WORLD_SIZE" in os.environ


@dataclass(frozen=True)
class Launch:
    """What a launcher (torchrun, a scheduler's script) told this process of its group."""

    rank: int
    world_size: int
    local_rank: int  # among the processes on this machine
    local_world_size: int


# The most ranks a group may have here: far above any machine room, far below a typo's
MAX_RANKS = 1 << 16


def launch_environment() -> Launch:
    """The launcher's variables, read and checked in one place before torch reads them: each a
    whole number in its range, and the address the ranks meet at; else one line naming the
    variable, its value and what it may be."""
    env = os.environ

    def number(name: str, low: int, high: int, default: int | None = None) -> int:
        text = env.get(name)
        if text is None and default is not None:
            return default
        if text is None:
            given = ", ".join(other for other in ("RANK", "WORLD_SIZE") if other in env)
            raise PipelineError(
                f"{name} is not set, and {given} is: set it too, or neither RANK nor "
                "WORLD_SIZE to train without a launcher"
            )
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise PipelineError(
                f"{name} = {shown(text)}: not a whole number from {low} to {high} "
                "(the launcher's environment)"
            )
        return value

    world = number("WORLD_SIZE", 1, MAX_RANKS)
    rank = number("RANK", 0, world - 1)
    local_world = number("LOCAL_WORLD_SIZE", 1, world, default=world)
    local_rank = number("LOCAL_RANK", 0, local_world - 1, default=0)
    if not env.get("MASTER_ADDR"):
        raise PipelineError(
            f"MASTER_ADDR is not set: the {world} rank(s) have no address to meet at "
            "(torchrun sets it; a scheduler's script must set it and MASTER_PORT)"
        )
    number("MASTER_PORT", 1, 65535)
    return Launch(rank, world, local_rank, local_world)


def gpu_count() -> int:
    """The CUDA devices this process may use, counted without initialising CUDA (through
    NVML), so that the ranks forked afterwards can still use it."""
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    return torch.cuda.device_count()


def require_devices(
    processes: int, device: str, option: str, gpus: Callable[[], int] = gpu_count
) -> None:
    """A one-line error, before any rank starts, when `processes` ranks on this machine cannot
    each have a device of their own: more than its GPUs on cuda, more than one on mps.

    `device` is train.device (auto as resolve_device picks); `option` names the setting that
    asked for the processes.
    """
    if processes == 1 or device == "cpu":
        return
    available = gpus()
    if device == "auto":
        device = auto_device(devices_here(cuda=available > 0))
    if device == "mps":
        raise PipelineError(
            f"{option} = {processes}: processes cannot share the mps device; "
            "use train.nproc: 1, or train.device: cpu"
        )
    if device == "cuda" and processes > available:
        at_most = f"at most {available}, or " if available else ""
        raise PipelineError(
            f"{option} = {processes}: each process needs a GPU of its own and this machine "
            f"has {available}; use {at_most}train.device: cpu"
        )


def spawn(nproc: int, function: Callable[..., None], *args: Any) -> None:
    """Run function(*args) in `nproc` processes on this machine, as torchrun would start them.

    If one fails, the others are stopped and the failure is one line naming the rank.
    """
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    # torch logs each rank it stops; the one line below says what matters
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    # fork, not spawn: the ranks start in milliseconds instead of importing torch again, and
    # this process has run no torch computation (no thread pool) that forking would break
    ranks = start_processes(
        _rank_main, args=(nproc, function, args), nprocs=nproc, join=False, start_method="fork"
    )
    try:
        while not ranks.join():  # raises when a rank fails, after stopping the others
            pass
    except (ProcessRaisedException, EOFError) as error:  # EOFError: torch read a rank's
        # error file while that rank, stopped, was still writing it
        exitcodes = [process.exitcode for process in ranks.processes]
        rank, last = failed_rank(ranks.error_files, exitcodes, error)
        message = last.split(": ", 1)[1] if last.startswith(_OURS) else last
        raise PipelineError(f"train rank {rank}: {message}") from None
    except ProcessExitedException as error:
        if error.signal_name in ("SIGINT", "SIGTERM"):  # stopped from outside, not failed:
            # the ranks ended their epoch together and saved; the stage ends as they did
            signum = signal.Signals[error.signal_name]
            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum) from None
        raise PipelineError(
            f"train rank {error.error_index}: {error}; the other ranks were stopped"
        ) from None
    finally:
        # also when we are stopped ourselves (Ctrl-C, SIGTERM): no rank outlives the stage.
        # A rank that saves resume points holds the SIGTERM to its epoch's end, saves with the
        # others and ends; one whose peer failed ends by its deadline (training_run)
        for process in ranks.processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for path in ranks.error_files:  # a failed rank's traceback, read above: torch keeps it
            Path(path).unlink(missing_ok=True)


def failed_rank(
    error_files: list[str], exitcodes: list[int | None], error: ProcessRaisedException | EOFError
) -> tuple[int, str]:
    """The failed rank to report, and its traceback's last line ("module.Error: message"):
    the first rank that raised one of our own errors (a bad line in its part of the data),
    not one that failed because that rank had gone (its peer closed the connection), which
    torch may have seen first; else the rank torch reports. A rank that raised wrote its
    traceback to its error file; one stopped while writing it is told by how it ended."""
    last_lines = {}
    if isinstance(error, ProcessRaisedException):
        last_lines[error.error_index] = (str(error).strip().splitlines() or ["a rank failed"])[-1]
    for rank, path in enumerate(error_files):
        if os.access(path, os.R_OK) and os.path.getsize(path):
            with open(path, "rb") as file:
                try:
                    last_lines[rank] = str(pickle.load(file)).strip().splitlines()[-1]
                except EOFError:  # still being written, or its rank stopped meanwhile
                    continue
    ours = sorted(rank for rank, last in last_lines.items() if last.startswith(_OURS))
    if ours:
        return ours[0], last_lines[ours[0]]
    if isinstance(error, ProcessRaisedException):
        return error.error_index, last_lines[error.error_index]
    if last_lines:
        rank = min(last_lines)
        return rank, last_lines[rank]
    rank, code = next((rank, code) for rank, code in enumerate(exitcodes) if code)
    ended = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return rank, f"process {rank} terminated with {ended}; the other ranks were stopped"


def _rank_main(rank: int, nproc: int, function: Callable[..., None], args: tuple[Any, ...]) -> None:
    # forked from a stage process: SIGTERM (how a failed rank's siblings are stopped) unwinds
    # the rank's work, so that what it leaves is cleaned up (the live log put back), then ends
    # it by that signal, quietly: the stage process reports the failure once
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        try:
            die_with_parent()  # and a rank whose stage process was killed outright ends too
            os.environ.update(RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank))
            # share the cores instead of each rank running a thread per core (torchrun does
            # the same through OMP_NUM_THREADS)
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
            function(*args)
        finally:
            # the work is over, done or failed: a stop from now on (while torch writes this
            # rank's traceback, or the process winds down) ends the rank by the signal, instead
            # of raising out of torch's or multiprocessing's code into a second traceback
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except Terminated:
        die_by(signal.SIGTERM)
    except KeyboardInterrupt:  # a coordinated stop that began with SIGINT (training_run)
        die_by(signal.SIGINT)


def free_port() -> int:
    """A TCP port on the loopback address that no process listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
