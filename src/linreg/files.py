"""Reading and writing artifacts: CSV tables, JSON and atomic byte writes. No torch here."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from linreg.errors import PipelineError


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`.

    A reader (or an interrupted run) sees the old file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_csv(path: str | Path, columns: Mapping[str, np.ndarray]) -> None:
    """Write equal-length columns as CSV; floats in the shortest text that reads back exactly."""
    table = pa.Table.from_arrays([_to_arrow(values) for values in columns.values()], list(columns))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    header = (",".join(columns) + "\n").encode()  # unquoted, unlike pyarrow's own header
    write_bytes_atomic(path, header + sink.getvalue().to_pybytes())


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
        raise PipelineError(f"{path}: {str(error).splitlines()[0]}") from None
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise PipelineError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found: {', '.join(table.column_names) or 'none'}; expected: {', '.join(names)}"
        )
    if table.num_rows == 0:
        raise PipelineError(f"{path}: no data rows")
    columns = {name: _to_numpy(table[name]) for name in names}
    for name, values in columns.items():
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            # +2: one for the header line, one because lines count from 1
            raise PipelineError(
                f"{path}: line {bad[0] + 2}, column {name}: {values[bad[0]]} is not a finite number"
            )
    return columns


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
