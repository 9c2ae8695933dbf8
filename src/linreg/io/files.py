"""Files under every artifact: atomic writes (one file, or all of a stage's together), the
check that an input is a regular file, digests, reading in chunks, and JSON. No torch here."""

from __future__ import annotations

import codecs
import glob
import hashlib
import json
import math
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, BinaryIO

from linreg.core.errors import PipelineError, not_utf8, shorten

# Inside all_or_none(): the finished temporary files waiting to be renamed, with their targets.
_pending: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("pending", default=None)


def check_folder(folder: str | Path) -> None:
    """That `folder` can be made or written in: a file (or anything but a folder) in the place
    of it or of a folder above it is one line naming it."""
    folder = Path(folder)
    for place in [*reversed(folder.parents), folder]:
        if place.exists() and not place.is_dir():
            within = "" if place == folder else f" (it holds {folder})"
            raise PipelineError(
                f"{place}: a file, where a folder must be{within}; move it away, or remove it"
            )


def make_folder(folder: Path) -> None:
    """`folder` and the folders above it, made where they are missing (check_folder first)."""
    check_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A new file to write; on leaving the block it is renamed over `path` in one step.

    A reader (or an interrupted run) sees the old file or the new one, never a torn one: the
    bytes go to a temporary file beside `path`, removed if the block raises. Inside
    all_or_none() the rename waits for the end of that block. An OS error (no space, no
    permission) names `path`, not the temporary file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = None
    try:
        make_folder(path.parent)
        # What a SIGKILL mid-write left of an earlier write to this file (the target itself
        # was never touched): DVC's lock means no other writer of it is running now.
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        pending = _pending.get()
        if pending is None:
            os.replace(tmp, path)
        else:
            pending.append((tmp, path))
    except BaseException as error:
        if fd is not None:  # only what we created: on a read-only disk even unlink fails
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            error.filename = str(path)
        raise


@contextmanager
def all_or_none() -> Iterator[None]:
    """Atomic writes inside this block replace their targets together at its end: a stage
    that fails on its second output leaves the first one old too (all new or all old)."""
    pending: list[tuple[Path, Path]] = []
    token = _pending.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _pending.reset(token)
    # Every byte is on disk: what is left is renames, which need no space (but a target can
    # refuse them: an immutable file). One that fails names its file and leaves no temporary.
    for done, (tmp, path) in enumerate(pending):
        try:
            os.replace(tmp, path)
        except OSError as error:
            for left, _ in pending[done:]:
                left.unlink(missing_ok=True)
            error.filename = str(path)
            raise


def require_file(path: str | Path, missing: str) -> Path:
    """`path` as a Path when it is a regular file (or a link to one); else a PipelineError
    saying it is missing (with the hint `missing`) or what it is instead."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found ({missing})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
        raise PipelineError(f"{path}: {kind}; expected a file ({missing})")
    return path


def require_only_files(folder: str | Path) -> None:
    """A one-line error when `folder` (if there is one) holds anything but files and folders:
    DVC hashes every file of a folder a stage depends on, and on a named pipe it waits forever
    (DVC's own behaviour: `dvc status` of any stage that depends on such a folder hangs)."""
    for path in sorted(Path(folder).rglob("*")):
        try:
            mode = path.stat().st_mode  # a link: what it leads to, as DVC follows it
        except FileNotFoundError:
            continue  # a link that leads nowhere: DVC says so itself
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise PipelineError(
                f"{path}: not a file (a pipe, socket or device); DVC would wait on it forever "
                f"while it hashes {folder}/: remove it"
            )


def read_bytes(path: str | Path, missing: str, limit: int) -> bytes:
    """The bytes of a regular file (require_file) of at most `limit` bytes: every file read
    whole is read here, so that a link to /dev/zero, a pipe or a file grown huge is one line,
    never a hang or memory running out."""
    path = require_file(path, missing)
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise PipelineError(
            f"{path}: larger than the {limit:,} bytes such a file can hold; is it the right file?"
        )
    return data


def check_utf8(path: Path) -> None:
    """A PipelineError naming the first byte that is not UTF-8 (as UTF-16 or Latin-1 has)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as file:
        for chunk in chunks(file):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise not_utf8(path, chunk[error.start], offset + error.start) from None
            if b"\0" in chunk:  # valid UTF-8, but no text file has it: UTF-16 without a BOM
                at = offset + chunk.index(b"\0")
                raise PipelineError(
                    f"{path}: not UTF-8 text (a NUL byte at offset {at:,}: UTF-16?); "
                    "save it as UTF-8"
                )
            offset += len(chunk)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_file)."""
    with atomic_file(path) as file:
        file.write(data)


def file_digest(path: str | Path, start: int = 0, stop: int | None = None) -> bytes:
    """The sha256 of a regular file's bytes [start, stop) (to its end when stop is None)."""
    digest = hashlib.sha256()
    with require_file(path, "run the stage that writes it first").open("rb") as file:
        file.seek(start)
        for chunk in chunks(file, stop - start if stop is not None else None):
            digest.update(chunk)
    return digest.digest()


def chunks(file: BinaryIO, length: int | None = None) -> Iterator[bytes]:
    """The next `length` bytes of `file` (all that is left when None), a MiB at a time, ending
    early where the file does: a file that shrinks while it is read ends the loop."""
    while length is None or length > 0:
        chunk = file.read(1 << 20 if length is None else min(length, 1 << 20))
        if not chunk:
            return
        if length is not None:
            length -= len(chunk)
        yield chunk


# The JSON files the pipeline reads (data/truth.json: a weight per feature, a thousand at most).
JSON_BYTES = 1 << 20


# The deepest JSON read: the pipeline's own files are two levels deep.
JSON_DEPTH = 32


def read_json(path: str | Path, missing: str) -> Any:
    """The JSON value in a file (`missing`: what to do when it is not there): at most
    JSON_BYTES, JSON_DEPTH levels deep, every number finite (JSON has no NaN or infinity,
    which Python's reader would take, and 1e400 would become one); else one line."""
    data = read_bytes(path, missing, JSON_BYTES)
    try:
        value = json.loads(
            data, parse_float=_finite_float, parse_int=_finite_int, parse_constant=_no_constant
        )
    except RecursionError:
        raise PipelineError(f"{path}: not JSON we read (nested deeper than {JSON_DEPTH})") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise PipelineError(f"{path}: not JSON ({shorten(str(error))})") from None
    if _depth(value) > JSON_DEPTH:
        raise PipelineError(f"{path}: not JSON we read (nested deeper than {JSON_DEPTH})")
    return value


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {shorten(text)} is not a finite float")
    return number


def _finite_int(text: str) -> int:
    """A JSON integer, refused past float's range (it could not be compared as a number)."""
    if len(text) > 309:
        raise ValueError(f"a number of {len(text):,} digits is beyond a float's range")
    return int(text)


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")  # NaN, Infinity, -Infinity


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def write_json(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write a JSON object, keys in the given order, floats at full precision. NaN and
    infinity are refused: JSON has no such numbers (json.dumps would write non-JSON)."""
    write_bytes_atomic(path, (json.dumps(dict(data), indent=2, allow_nan=False) + "\n").encode())
