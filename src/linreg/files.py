"""Reading and writing artifacts: CSV tables, JSON and atomic byte writes. No torch here."""

from __future__ import annotations

import csv
import glob
import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from linreg.errors import PipelineError


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A new file to write; on leaving the block it is renamed over `path` in one step.

    A reader (or an interrupted run) sees the old file or the new one, never a torn one: the
    bytes go to a temporary file beside `path`, removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # What a SIGKILL mid-write left of an earlier write to this file (the target itself was
    # never touched): DVC's lock means no other writer of it is running now.
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_file)."""
    with atomic_file(path) as file:
        file.write(data)


# Rows converted to text at a time: bounds the text in memory at ~25 MiB whatever the size.
CSV_CHUNK_ROWS = 1 << 20


def write_csv(path: str | Path, columns: Mapping[str, np.ndarray], progress: bool = False) -> None:
    """Write equal-length columns as CSV; floats in the shortest text that reads back exactly.

    progress shows a bar (for a person at a terminal).
    """
    rows = len(next(iter(columns.values())))
    options = pacsv.WriteOptions(include_header=False)
    with atomic_file(path) as file, _progress(rows, f"write {Path(path).name}", progress) as done:
        file.write((",".join(columns) + "\n").encode())  # unquoted, unlike pyarrow's header
        for start in range(0, rows, CSV_CHUNK_ROWS):
            chunk = [
                _to_arrow(values[start : start + CSV_CHUNK_ROWS]) for values in columns.values()
            ]
            sink = pa.BufferOutputStream()
            pacsv.write_csv(pa.Table.from_arrays(chunk, list(columns)), sink, options)
            file.write(sink.getvalue())
            done(len(chunk[0]))


@contextmanager
def _progress(total: int, description: str, show: bool) -> Iterator[Callable[[int], object]]:
    """What to call with each chunk's row count: a tqdm bar's update, or nothing."""
    if not show:
        yield lambda rows: None
        return
    from tqdm import tqdm  # only for a person watching: the import costs a stage 40 ms

    with tqdm(total=total, desc=description, unit="row", unit_scale=True, leave=False) as bar:
        yield bar.update


def read_csv(path: str | Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Read the named columns of a CSV file as float32 arrays, refusing empty or non-finite data."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: file not found (run the stage that writes it first)")
    options = pacsv.ConvertOptions(
        column_types={name: pa.float32() for name in names},
        null_values=[],  # an empty cell is an error, not a silent null
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        # pyarrow names neither the line nor the column: find them (a slow pass, errors only)
        reason = _diagnose(path, names) or str(error).splitlines()[0]
        raise PipelineError(f"{path}: {reason}") from None
    missing = [name for name in names if name not in table.column_names]
    if missing:
        found = table.column_names
        other = [d for d in ";\t|" if len(found) == 1 and d in found[0]]
        hint = f" (separated by {other[0]!r}? columns are separated by ',')" if other else ""
        raise PipelineError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found: {', '.join(found) or 'none'}{hint}; expected: {', '.join(names)}"
        )
    if table.num_rows == 0:
        raise PipelineError(f"{path}: no data rows (a header line only)")
    columns = {name: _to_numpy(table[name]) for name in names}
    for name, values in columns.items():
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            # +2: one for the header line, one because lines count from 1
            raise PipelineError(
                f"{path}: line {bad[0] + 2}, column {name}: {values[bad[0]]} is not a finite number"
            )
    return columns


def _diagnose(path: Path, names: Sequence[str]) -> str | None:
    """The first problem in a CSV file that pyarrow refused, with its line and column."""
    with path.open(newline="", errors="replace") as file:
        rows = csv.reader(file)
        header = next(rows, None)
        if header is None:
            return f"empty file; expected a header line {','.join(names)} and data rows"
        data_rows = 0
        for row in rows:
            if not row:
                continue  # pyarrow skips blank lines too
            data_rows += 1
            line = rows.line_num
            if len(row) != len(header):
                return (
                    f"line {line}: {len(row)} field(s) {','.join(row)!r} where the header has "
                    f"{len(header)}; a truncated or hand-edited line?"
                )
            for column, cell in zip(header, row, strict=True):
                if column in names and not _is_number(cell):
                    return f"line {line}, column {column}: {cell!r} is not a number"
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


def _to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A float32 column without nulls -> a writable numpy copy (torch wants writable memory)."""
    array = column.combine_chunks()
    data = array.buffers()[1]
    return np.frombuffer(data, np.float32, count=len(array), offset=array.offset * 4).copy()


def write_json(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write a JSON object, keys in the given order, floats at full precision."""
    write_bytes_atomic(path, (json.dumps(dict(data), indent=2) + "\n").encode())
