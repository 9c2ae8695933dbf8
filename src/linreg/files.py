"""Reading and writing artifacts: CSV tables, JSON and atomic byte writes. No torch here."""

from __future__ import annotations

import codecs
import csv
import glob
import hashlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from linreg.errors import PipelineError, not_utf8, shorten, shown

# Inside all_or_none(): the finished temporary files waiting to be renamed, with their targets.
_pending: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("pending", default=None)


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
        path.parent.mkdir(parents=True, exist_ok=True)
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
    # Every byte is on disk: what is left is renames, which need no space.
    for tmp, path in pending:
        os.replace(tmp, path)


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


def check_utf8(path: Path) -> None:
    """A PipelineError naming the first byte that is not UTF-8 (as UTF-16 or Latin-1 has)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
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


# Rows converted to text at a time: bounds the text in memory at ~25 MiB whatever the size.
CSV_CHUNK_ROWS = 1 << 20


def write_csv(path: str | Path, columns: Mapping[str, np.ndarray]) -> None:
    """Write equal-length columns as CSV; floats in the shortest text that reads back exactly."""
    rows = len(next(iter(columns.values())))
    chunks = (
        {name: values[start : start + CSV_CHUNK_ROWS] for name, values in columns.items()}
        for start in range(0, rows, CSV_CHUNK_ROWS)
    )
    write_csv_chunks(path, list(columns), chunks, rows)


def write_csv_chunks(
    path: str | Path,
    names: Sequence[str],
    chunks: Iterable[Mapping[str, np.ndarray]],
    rows: int,
) -> None:
    """Write CSV from chunks of rows made one at a time (a generator: the whole table is never
    in memory), each mapping the column names to equal-length arrays; `rows` in all."""
    with csv_writer(path, names, rows) as write:
        for chunk in chunks:
            write(chunk)


@contextmanager
def csv_writer(
    path: str | Path, names: Sequence[str], rows: int | None
) -> Iterator[Callable[[Mapping[str, np.ndarray]], None]]:
    """A function that appends a chunk of rows (column name -> equal-length arrays) to a new
    CSV file at `path`, written atomically when the block ends; `rows` in all (for the bar;
    None when not known), with a progress bar for a person at a terminal."""
    options = pacsv.WriteOptions(include_header=False)
    with atomic_file(path) as file, _progress(rows, f"write {Path(path).name}") as done:
        file.write((",".join(names) + "\n").encode())  # unquoted, unlike pyarrow's header

        def write(chunk: Mapping[str, np.ndarray]) -> None:
            arrays = [_to_arrow(chunk[name]) for name in names]
            sink = pa.BufferOutputStream()
            pacsv.write_csv(pa.Table.from_arrays(arrays, list(names)), sink, options)
            file.write(sink.getvalue())
            done(len(arrays[0]))

        yield write


@contextmanager
def _progress(total: int | None, description: str) -> Iterator[Callable[[int], object]]:
    """What to call with each chunk's row count: a tqdm bar's update where stderr is a terminal
    (as tqdm's own disable=None decides), else nothing."""
    if not sys.stderr.isatty():
        yield lambda rows: None
        return
    from tqdm import tqdm  # only for a person watching: the import costs a stage 40 ms

    with tqdm(total=total, desc=description, unit="row", unit_scale=True, leave=False) as bar:
        yield bar.update


def read_csv(path: str | Path, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read the named columns of a CSV file (all of them, in order, when `names` is None) as
    float32 arrays, refusing empty or non-finite data and repeated column names."""
    path = require_file(path, "run the stage that writes it first")
    try:
        names = _column_names(path, names)
        table = pacsv.read_csv(path, convert_options=_float_columns(names))
        _check_columns(path, table.column_names, names)  # decodes the header: Latin-1 fails
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as error:
        raise _unreadable(path, names, error) from None
    if table.num_rows == 0:
        raise PipelineError(f"{path}: no data rows (a header line only)")
    columns = {name: _to_numpy(table[name].combine_chunks()) for name in names}
    _refuse_non_finite(path, columns, rows_before=0)
    return columns


# Bytes of a CSV file parsed at a time by read_csv_blocks and read_csv_part: ~0.8 M rows of
# two columns. The reader reads them itself: pyarrow's streaming reader reads ahead as far as
# it can (about 200 MB of a 10^7-row file before the first block is used).
CSV_BLOCK_BYTES = 16 << 20


def read_csv_blocks(path: str | Path) -> Iterator[dict[str, np.ndarray]]:
    """read_csv (all the columns) a block of rows at a time, with the same checks: memory holds
    a block, whatever the file's size. A problem is raised when its block is reached."""
    path = require_file(path, "run the stage that writes it first")
    names: Sequence[str] = ()
    rows = 0
    try:
        names = _column_names(path, None)
        _check_columns(path, list(names), names)
        for columns in _parsed_blocks(path, names, *_body(path)):
            _refuse_non_finite(path, columns, rows_before=rows)
            rows += len(columns[names[0]])
            yield columns
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as error:
        raise _unreadable(path, names, error) from None
    if rows == 0:
        raise PipelineError(f"{path}: no data rows (a header line only)")


def read_csv_part(path: str | Path, part: int, parts: int) -> dict[str, np.ndarray]:
    """read_csv (all the columns) of the data lines in the part-th of `parts` byte ranges of
    the file (line_range): each process of a group reads its part alone, not the whole file."""
    path = require_file(path, "run the stage that writes it first")
    names: Sequence[str] = ()
    try:
        names = _column_names(path, None)
        _check_columns(path, list(names), names)
        start, stop = line_range(path, part, parts)
        blocks = list(_parsed_blocks(path, names, start, stop))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as error:
        raise _unreadable(path, names, error) from None
    columns = {
        name: np.concatenate([np.empty(0, np.float32)] + [block.pop(name) for block in blocks])
        for name in names
    }
    if not all(np.isfinite(values).all() for values in columns.values()):
        _refuse_non_finite(path, columns, rows_before=_lines_before(path, start) - 1)
    return columns


def _parsed_blocks(
    path: Path, names: Sequence[str], start: int, stop: int
) -> Iterator[dict[str, np.ndarray]]:
    """The data lines in bytes [start, stop) of a CSV file (whole lines; `names` its header),
    parsed about CSV_BLOCK_BYTES at a time, each block cut at a line's end."""
    read_options = pacsv.ReadOptions(column_names=names)
    with path.open("rb") as file:
        file.seek(start)
        left, rest = stop - start, b""
        while left or rest:
            chunk = file.read(min(CSV_BLOCK_BYTES, left))
            left = left - len(chunk) if chunk else 0  # a file cut short ends where it ends
            data = rest + chunk
            cut = len(data) if not left else data.rfind(b"\n") + 1  # 0: a line longer yet
            rest = data[cut:]
            if cut:  # blank lines alone parse to no rows
                block = pa.py_buffer(memoryview(data)[:cut])
                table = pacsv.read_csv(block, read_options, None, _float_columns(names))
                if table.num_rows:
                    yield {name: _to_numpy(table[name].combine_chunks()) for name in names}


def _body(path: Path) -> tuple[int, int]:
    """The bytes [start, stop) of a CSV file's data lines: all after the header line."""
    with path.open("rb") as file:
        return len(file.readline()), os.fstat(file.fileno()).st_size


def line_range(path: Path, part: int, parts: int) -> tuple[int, int]:
    """The bytes [start, stop) of whole data lines that are the part-th of `parts`: the body
    (all after the header line) is cut into `parts` equal byte ranges, and each line belongs to
    the range its first byte is in. Together the parts hold every data line once."""
    body, size = _body(path)
    if size == body:
        raise PipelineError(f"{path}: no data rows (a header line only)")
    with path.open("rb") as file:

        def line_start(cut: int) -> int:  # the first line that starts at `cut` or after it
            file.seek(cut - 1)
            while chunk := file.read(1 << 16):
                newline = chunk.find(b"\n")
                if newline >= 0:
                    return file.tell() - len(chunk) + newline + 1
            return size

        cuts = [body + (size - body) * i // parts for i in (part, part + 1)]
        start, stop = (cut if cut in (body, size) else line_start(cut) for cut in cuts)
    return start, stop


def file_digest(path: str | Path, part: int = 0, parts: int = 1) -> bytes:
    """The sha256 of a file's bytes, or of the bytes of its part-th of `parts` (line_range; the
    first part with the header line): the bytes a process of a group reads."""
    path = Path(path)
    start, stop = (0, path.stat().st_size) if parts == 1 else line_range(path, part, parts)
    digest = hashlib.sha256()
    with path.open("rb") as file:
        file.seek(0 if part == 0 else start)
        left = stop - file.tell()
        while left:
            chunk = file.read(min(left, 1 << 20))
            digest.update(chunk)
            left -= len(chunk)
    return digest.digest()


def _lines_before(path: Path, offset: int) -> int:
    """The lines that end before byte `offset` (a slow pass, for an error's line number)."""
    lines, left = 0, offset
    with path.open("rb") as file:
        while left:
            chunk = file.read(min(left, 1 << 20))
            lines, left = lines + chunk.count(b"\n"), left - len(chunk)
    return lines


def _column_names(path: Path, names: Sequence[str] | None) -> Sequence[str]:
    """`names`, or all the header's when None (a one-column header with ';', tab or '|' in it
    is refused: data files have two columns at the least)."""
    if names is not None:
        return names
    header = _header(path)
    if not header:  # an empty file, or an empty first line
        raise _unreadable(path, (), ValueError("no header line"))
    if len(header) == 1:
        _refuse_other_separator(path, header[0])
    return header


def _float_columns(names: Sequence[str]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types={name: pa.float32() for name in names},
        null_values=[],  # an empty cell is an error, not a silent null
        quoted_strings_can_be_null=False,
    )


def _unreadable(path: Path, names: Sequence[str] | None, error: Exception) -> PipelineError:
    """pyarrow names neither the line nor the column: find them (a slow pass, errors only)."""
    check_utf8(path)
    reason = _diagnose(path, names or ()) or shorten(str(error).splitlines()[0])
    return PipelineError(f"{path}: {reason}")


def _check_columns(path: Path, found: list[str], names: Sequence[str]) -> None:
    repeated = [name for name in dict.fromkeys(found) if found.count(name) > 1]
    if repeated:
        raise PipelineError(
            f"{path}: line 1: column {shown(repeated[0])} appears {found.count(repeated[0])} "
            "times; give each column its own name"
        )
    missing = [name for name in names if name not in found]
    if missing:
        check_utf8(path)  # a UTF-16 header reads as one strange column name
        other = [d for d in ";\t|" if len(found) == 1 and d in found[0]]
        hint = f" (separated by {other[0]!r}? columns are separated by ',')" if other else ""
        listed = shorten(", ".join(found)) if found else "none"
        raise PipelineError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found: {listed}{hint}; expected: {', '.join(names)}"
        )


def _refuse_non_finite(path: Path, columns: Mapping[str, np.ndarray], rows_before: int) -> None:
    for name, values in columns.items():
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            # +2: one for the header line, one because lines count from 1
            line = rows_before + bad[0] + 2
            raise PipelineError(
                f"{path}: line {line}, column {name}: {values[bad[0]]} is not a finite number"
            )


def _refuse_other_separator(path: Path, header: str) -> None:
    other = [d for d in ";\t|" if d in header]
    if other:
        raise PipelineError(
            f"{path}: one column {shown(header)} (separated by {other[0]!r}? columns are "
            "separated by ',')"
        )


def _header(path: Path) -> list[str]:
    """The column names on a CSV file's first line (none for an empty file)."""
    csv.field_size_limit(sys.maxsize)  # a 50 MB line is one field too
    with path.open(newline="", encoding="utf-8") as file:
        return next(csv.reader(file), [])


def _diagnose(path: Path, names: Sequence[str]) -> str | None:
    """The first problem in a CSV file that pyarrow refused, with its line and column."""
    # a 50 MB line is one field too: the csv module's default limit (128 KiB) would refuse it
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="") as file:
        rows = csv.reader(file)
        header = next(rows, None)
        if header is None:
            expected = f"a header line {','.join(names)}" if names else "a header line"
            return f"empty file; expected {expected} and data rows"
        data_rows = 0
        for row in rows:
            if not row:
                continue  # pyarrow skips blank lines too
            data_rows += 1
            line = rows.line_num
            if len(row) != len(header):
                return (
                    f"line {line}: {len(row)} field(s) {shown(','.join(row))} where the header "
                    f"has {len(header)}; a truncated or hand-edited line?"
                )
            for column, cell in zip(header, row, strict=True):
                if column in names and not _is_number(cell):
                    return f"line {line}, column {column}: {shown(cell)} is not a number"
        if data_rows == 0:
            return "no data rows (a header line only)"
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# pyarrow's own numpy conversions (pa.array, Array.to_numpy) import pandas to check their
# input, 0.2 s per stage; these two go through the raw buffers and need no such check.


def _to_arrow(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values)
    buffers = [None, pa.py_buffer(values)]
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), buffers)


def _to_numpy(array: pa.Array) -> np.ndarray:
    """A float32 column without nulls -> a writable numpy copy (torch wants writable memory)."""
    data = array.buffers()[1]
    return np.frombuffer(data, np.float32, count=len(array), offset=array.offset * 4).copy()


def write_json(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write a JSON object, keys in the given order, floats at full precision. NaN and
    infinity are refused: JSON has no such numbers (json.dumps would write non-JSON)."""
    write_bytes_atomic(path, (json.dumps(dict(data), indent=2, allow_nan=False) + "\n").encode())
