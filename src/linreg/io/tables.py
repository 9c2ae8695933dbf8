"""CSV tables, the form of every data artifact: written a chunk of rows at a time, and read a
block of rows at a time, of the whole file or of a rank's part of its lines, with one clear line
for any problem in them. float32 columns, or float64 where the values' full precision is
kept (a user's own table); no torch here."""

from __future__ import annotations

import csv
import io
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from linreg.core.conventions import FLOAT32_MAX
from linreg.core.dataset import BLOCK_ROWS
from linreg.core.errors import PipelineError, shorten, shown
from linreg.io.files import atomic_file, check_utf8, chunks, file_digest, require_file

T = TypeVar("T")

# Bytes pyarrow's streaming reader parses at a time. It reads a fixed number of blocks ahead
# of the one in use: 4 MiB blocks keep that read-ahead near 180 MiB at any file size (1 MiB:
# 60 MiB, but evaluate 5 % slower; 16 MiB: 300 MiB). python -m bench.scale --against REV.
PARSE_BYTES = 4 << 20
# Rows a thread formats as text at the least: a larger chunk is formatted in as many pieces as
# the process may use cores, at once (pyarrow's writer releases the GIL), and written in order:
# the same bytes. Chunks of 2^20 rows of two float32 columns, 2 cores: 140 ns a row on one
# thread, 90 on two; generate at 10^7 rows 36 % faster (python -m bench.scale --against REV).
FORMAT_ROWS = 1 << 16
# The cores this process may run on (its container's or taskset's share, not the machine's).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# What a cell that means "missing" says, in a user's table (generate.missing), as pandas reads
# them: empty, NA, NaN, null and None, in the cases pandas knows.
MISSING_CELLS = (
    "",
    "NA",
    "N/A",
    "n/a",
    "<NA>",
    "NaN",
    "nan",
    "-NaN",
    "-nan",
    "NULL",
    "null",
    "None",
)


def write_csv(path: str | Path, columns: Mapping[str, np.ndarray]) -> None:
    """Write equal-length columns as CSV; floats in the shortest text that reads back exactly."""
    rows = len(next(iter(columns.values())))
    with csv_writer(path, list(columns), rows) as write:
        for start in range(0, rows, BLOCK_ROWS):
            write({name: values[start : start + BLOCK_ROWS] for name, values in columns.items()})


@contextmanager
def csv_writer(
    path: str | Path, names: Sequence[str] | None, rows: int | None
) -> Iterator[Callable[[Mapping[str, np.ndarray]], None]]:
    """A function that appends a chunk of rows (column name -> equal-length arrays) to a new
    CSV file at `path`, written atomically when the block ends (inside all_or_none: at its
    end). `names`: the columns, in order (None: the first chunk's); `rows` in all, for the
    progress bar a person at a terminal sees (None when not known)."""
    options = pacsv.WriteOptions(include_header=False)
    with (
        atomic_file(path) as file,
        _progress(rows, f"write {Path(path).name}") as done,
        ThreadPoolExecutor(_CORES, thread_name_prefix="format") as pool,  # threads when used
    ):
        columns = list(names) if names is not None else None

        def header(names: Sequence[str]) -> None:  # unquoted, unlike pyarrow's header
            file.write((",".join(names) + "\n").encode())

        def write(chunk: Mapping[str, np.ndarray]) -> None:
            nonlocal columns
            if not file.tell():
                columns = columns or list(chunk)
                header(columns)
            arrays = [_to_arrow(chunk[name]) for name in columns or ()]
            for text in _csv_texts(pa.Table.from_arrays(arrays, columns), options, pool):
                file.write(text)
            done(len(arrays[0]))

        yield write
        if not file.tell():  # no rows: the header alone
            header(columns or ())


def _csv_texts(
    table: pa.Table, options: pacsv.WriteOptions, pool: ThreadPoolExecutor
) -> Iterator[pa.Buffer]:
    """`table`'s rows as CSV text, in order: in pieces of at least FORMAT_ROWS rows, one a core,
    formatted at once by `pool`'s threads; a smaller table on this thread."""
    pieces = min(_CORES, len(table) // FORMAT_ROWS)
    if pieces < 2:
        yield _csv_text(table, options)
        return
    size = -(-len(table) // pieces)
    slices = (table.slice(start, size) for start in range(0, len(table), size))
    yield from pool.map(partial(_csv_text, options=options), slices)


def _csv_text(table: pa.Table, options: pacsv.WriteOptions) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, options)
    return sink.getvalue()


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


def read_csv(
    path: str | Path,
    names: Sequence[str] | None = None,
    part: int = 0,
    parts: int = 1,
    ours: bool = True,
    missing: Sequence[str] = (),
    dtype: type[np.floating] = np.float32,
) -> dict[str, np.ndarray]:
    """csv_blocks, joined: the whole file's columns (or its part's) at once."""
    blocks = list(csv_blocks(path, names, part, parts, ours=ours, missing=missing, dtype=dtype))
    wanted = list(blocks[0]) if blocks else names or _header(Path(path))
    return {name: _joined([block.pop(name) for block in blocks], dtype) for name in wanted}


def csv_blocks(
    path: str | Path,
    names: Sequence[str] | None = None,
    part: int = 0,
    parts: int = 1,
    rows: int | None = None,
    ours: bool = True,
    missing: Sequence[str] = (),
    ahead: bool = False,
    dtype: type[np.floating] = np.float32,
) -> Iterator[dict[str, np.ndarray]]:
    """The named columns of a CSV file (all of them, in order, when `names` is None) as arrays
    of `dtype` (float32, or float64: each number as written, to a double's precision), about
    BLOCK_ROWS rows at a time: memory holds a block, whatever the file's size.
    With `parts` > 1, only the data lines of the part-th of `parts` (line_range): each process
    of a group reads its part alone. Empty or non-finite data and repeated column names are
    refused; a problem is raised when its block is reached, naming its line and column. `rows`:
    the rows counted before (count_rows), which the file must still hold when it is read.
    `ours`: a file the pipeline wrote, which ends in a newline unless it was cut short (a
    user's own CSV need not). `missing`: the cells that mean a missing value (MISSING_CELLS),
    read as NaN; without them a missing cell is an error. `ahead`: each block is parsed in a
    thread while the caller works on the one before (_read_ahead)."""
    path = require_file(path, "run the stage that writes it first")
    blocks = _blocks(path, names, part, parts, rows, ours, tuple(missing), dtype)
    return _read_ahead(blocks) if ahead else blocks


def _blocks(
    path: Path,
    names: Sequence[str] | None,
    part: int,
    parts: int,
    rows: int | None,
    ours: bool,
    missing: tuple[str, ...],
    dtype: type[np.floating],
) -> Iterator[dict[str, np.ndarray]]:
    wanted: Sequence[str] = names or ()
    read = 0
    try:
        header = _column_names(path, names)
        wanted = names or header
        _check_columns(path, header, wanted)
        if ours:
            _refuse_torn(path)
        start, stop = line_range(path, part, parts)
        for block in _parsed_blocks(path, header, wanted, start, stop, missing, dtype):
            _refuse_non_finite(path, block, start, read, missing)
            read += len(block[wanted[0]])
            yield block
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as error:
        raise _unreadable(path, wanted, error, missing) from None
    if not read and parts == 1:  # blank lines after the header
        raise _no_data_rows(path)
    if rows is not None and read != rows:
        raise PipelineError(
            f"{path}: {read:,} row(s) read where {rows:,} were counted: the file changed while "
            "it was read; run the stage again"
        )


def _read_ahead(blocks: Iterator[T]) -> Iterator[T]:
    """`blocks`, each made in a thread of its own while the caller works on the one before:
    pyarrow parses without holding the GIL, so the next block's parsing overlaps the caller's
    work on this one. One block waits at the most. It pays where that work is pyarrow's own
    (split's writing: 25 % faster at 10^7 rows); beside evaluate's torch and BLAS threads on
    two cores it cost 4 % (bench/scale.py --against), so only split asks for it."""
    ready: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)
    stopping = threading.Event()

    def make() -> None:
        try:
            for block in blocks:
                ready.put(("block", block))
                if stopping.is_set():
                    break
            ready.put(("end", None))
        except BaseException as error:  # raised again where the caller reads the blocks
            ready.put(("error", error))

    maker = threading.Thread(target=make, name="read-ahead", daemon=True)
    maker.start()
    kind = "block"
    try:
        while (item := ready.get())[0] == "block":
            yield cast(T, item[1])
        kind, value = item
        if kind == "error":
            raise cast(BaseException, value)
    finally:
        stopping.set()
        while kind == "block":  # the caller stopped early: let the maker see it and end
            kind = ready.get()[0]
        maker.join()


def count_rows(path: str | Path) -> int:
    """The data rows of a CSV file, counted without parsing it where its lines are plain (no
    blank line, no carriage return: every file the pipeline writes): its lines after the
    header. Elsewhere csv_blocks counts them. Ten times faster than parsing: a stage that
    needs the count before it reads the rows (split's cut, plot's sample) pays little for it."""
    path = require_file(path, "run the stage that writes it first")
    try:
        header = _column_names(path, None)  # the header's problems, as csv_blocks says them
    except UnicodeDecodeError as error:
        raise _unreadable(path, (), error) from None
    _check_columns(path, header, header)
    _refuse_torn(path)
    with path.open("rb") as file:
        file.readline()
        newlines, tail = 0, b"\n"  # as if after a line's end: a blank first line is seen
        for chunk in chunks(file):
            if b"\r" in chunk or b"\n\n" in chunk or tail + chunk[:1] == b"\n\n":
                return sum(len(next(iter(block.values()))) for block in csv_blocks(path))
            newlines, tail = newlines + chunk.count(b"\n"), chunk[-1:]
    rows = newlines + (tail != b"\n")  # the last line may lack its newline
    if not rows:
        raise _no_data_rows(path)
    return rows


def _parsed_blocks(
    path: Path,
    header: Sequence[str],
    wanted: Sequence[str],
    start: int,
    stop: int,
    missing: tuple[str, ...],
    dtype: type[np.floating],
) -> Iterator[dict[str, np.ndarray]]:
    """The `wanted` columns of the data lines in bytes [start, stop) of a CSV file (whole lines;
    `header` its column names), pyarrow's batches gathered into blocks of BLOCK_ROWS rows."""
    if start == stop:  # a part with no line (more parts than lines): pyarrow calls it empty
        return
    read_options = pacsv.ReadOptions(column_names=header, block_size=PARSE_BYTES, use_threads=False)
    convert_options = pacsv.ConvertOptions(
        include_columns=wanted,
        column_types={name: pa.from_numpy_dtype(dtype) for name in wanted},
        null_values=list(missing),  # none: an empty cell is an error, not a silent null
        quoted_strings_can_be_null=bool(missing),  # a quoted "" or "NA" is missing, as unquoted
    )
    with path.open("rb", buffering=0) as file:
        file.seek(start)
        batches = pacsv.open_csv(_ByteRange(file, stop), read_options, None, convert_options)
        held: list[pa.RecordBatch] = []
        for batch in batches:
            held.append(batch)
            if sum(len(b) for b in held) >= BLOCK_ROWS:
                yield _block(held, wanted, dtype)
                held = []
        if held:
            yield _block(held, wanted, dtype)


def _block(
    batches: list[pa.RecordBatch], names: Sequence[str], dtype: type[np.floating]
) -> dict[str, np.ndarray]:
    table = pa.Table.from_batches(batches)
    return {name: _to_numpy(_nan_for_null(table[name].combine_chunks()), dtype) for name in names}


def _nan_for_null(column: pa.Array) -> pa.Array:
    """A missing cell (a null: only when MISSING_CELLS are read as such) as NaN."""
    return column.fill_null(pa.scalar(float("nan"), column.type)) if column.null_count else column


class _ByteRange(io.RawIOBase):
    """The bytes of an open file from where it is up to `stop`, as a file of their own."""

    def __init__(self, file: io.FileIO, stop: int) -> None:
        self._file, self._stop = file, stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        left = max(self._stop - self._file.tell(), 0)
        return self._file.readinto(memoryview(buffer)[:left]) or 0


def line_range(path: Path, part: int = 0, parts: int = 1) -> tuple[int, int]:
    """The bytes [start, stop) of whole data lines that are the part-th of `parts`: the body
    (all after the header line) is cut into `parts` equal byte ranges, and each line belongs to
    the range its first byte is in. Together the parts hold every data line once."""
    path = require_file(path, "run the stage that writes it first")
    with path.open("rb") as file:
        body, size = len(file.readline()), path.stat().st_size
        if size == body:
            raise _no_data_rows(path)

        def line_start(cut: int) -> int:  # the first line that starts at `cut` or after it
            file.seek(cut - 1)
            for chunk in chunks(file):
                newline = chunk.find(b"\n")
                if newline >= 0:
                    return file.tell() - len(chunk) + newline + 1
            return size

        cuts = [body + (size - body) * i // parts for i in (part, part + 1)]
        start, stop = (cut if cut in (body, size) else line_start(cut) for cut in cuts)
    return start, stop


# The blocks a CSV file is hashed in, at fixed offsets: the same digests whatever the parts.
DIGEST_BLOCK = 1 << 22


def part_digests(path: str | Path, part: int = 0, parts: int = 1) -> list[bytes]:
    """The sha256 of each DIGEST_BLOCK of a CSV file that begins in its part-th of `parts`
    (line_range; the first part from the header on): a part's own bytes, and at most one block
    past them. The parts' lists, joined in order, are those of the whole file, so that a run's
    fingerprint does not depend on how many ranks read it. The file is checked (line_range's
    require_file) before a byte is read: a pipe or /dev/zero in its place is one line."""
    start, stop = line_range(Path(path), part, parts)
    start = 0 if part == 0 else start
    first = -(-start // DIGEST_BLOCK) * DIGEST_BLOCK  # the first block that begins in the part
    return [
        file_digest(path, offset, offset + DIGEST_BLOCK)
        for offset in range(first, stop, DIGEST_BLOCK)
    ]


def _lines_before(path: Path, offset: int) -> int:
    """The lines that end before byte `offset` (a slow pass, for an error's line number)."""
    with path.open("rb") as file:
        return sum(chunk.count(b"\n") for chunk in chunks(file, offset))


def _refuse_torn(path: Path) -> None:
    """A one-line error for a file the pipeline wrote that does not end in a newline: every one
    does, so this one was cut short (a full disk, a copy stopped midway), and its last number
    may be cut too (0.84599996 read as 0.84)."""
    with path.open("rb") as file:
        body = len(file.readline())  # a header alone needs no newline: it has no data
        size = file.seek(0, os.SEEK_END)
        file.seek(max(size - 1, 0))
        last = file.read(1)
    if size > body and last != b"\n":
        check_utf8(path)  # UTF-16 ends its lines in NUL bytes: the encoding is what to say
        raise PipelineError(
            f"{path}: its last line has no end: the file was cut short (every file the "
            "pipeline writes ends in a newline); run the stage that writes it again"
        )


def _no_data_rows(path: Path) -> PipelineError:
    return PipelineError(f"{path}: no data rows (a header line only)")


def _column_names(path: Path, names: Sequence[str] | None) -> list[str]:
    """The header's column names (a one-column header with ';', tab or '|' in it is refused
    when all the columns are asked for: data files have two columns at the least)."""
    header = _header(path)
    if not header:  # an empty file, or an empty first line
        raise _unreadable(path, names or (), ValueError("no header line"))
    if names is None and len(header) == 1:
        _refuse_other_separator(path, header[0])
    return header


def _joined(blocks: list[np.ndarray], dtype: type[np.floating]) -> np.ndarray:
    return blocks[0] if len(blocks) == 1 else np.concatenate([np.empty(0, dtype), *blocks])


def _unreadable(
    path: Path, names: Sequence[str] | None, error: Exception, missing: tuple[str, ...] = ()
) -> PipelineError:
    """pyarrow names neither the line nor the column: find them (a slow pass, errors only)."""
    check_utf8(path)
    reason = _diagnose(path, names or (), missing) or shorten(str(error).splitlines()[0])
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


def _refuse_non_finite(
    path: Path,
    columns: Mapping[str, np.ndarray],
    start: int,
    rows_before: int,
    missing: tuple[str, ...],
) -> None:
    """A one-line error at the first cell that is NaN (unless it means missing: `missing`),
    infinite, or beyond float32's range (read as float64: training may compute in float32), in
    a block that comes after `rows_before` rows of the data lines from `start`."""
    for name, values in columns.items():
        magnitude = np.abs(values)
        bad = np.flatnonzero(magnitude > FLOAT32_MAX if missing else ~(magnitude <= FLOAT32_MAX))
        if bad.size:
            line = _lines_before(path, start) + rows_before + bad[0] + 1  # lines count from 1
            value = values[bad[0]]
            reason = (
                f"{value:g} is beyond float32's range (magnitude at most {FLOAT32_MAX:.7g})"
                if np.isfinite(value)
                else f"{value} is not a finite number"
            )
            raise PipelineError(f"{path}: line {line}, column {name}: {reason}")


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
    # utf-8-sig: a byte-order mark (as spreadsheets write) is read as one, not as a name's start
    with path.open(newline="", encoding="utf-8-sig") as file:
        return next(csv.reader(file), [])


def _diagnose(path: Path, names: Sequence[str], missing: tuple[str, ...] = ()) -> str | None:
    """The first problem in a CSV file that pyarrow refused, with its line and column."""
    # a 50 MB line is one field too: the csv module's default limit (128 KiB) would refuse it
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8-sig") as file:
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
            if sum(map(len, row)) + len(row) > PARSE_BYTES:
                return (
                    f"line {line}: longer than the {PARSE_BYTES:,} bytes a line may hold; a "
                    "line of the data has a number per column"
                )
            if len(row) != len(header):
                return (
                    f"line {line}: {len(row)} field(s) {shown(','.join(row))} where the header "
                    f"has {len(header)}; a truncated or hand-edited line?"
                )
            for column, cell in zip(header, row, strict=True):
                if column in names and not _is_number(cell) and cell not in missing:
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


def _to_numpy(array: pa.Array, dtype: type[np.floating]) -> np.ndarray:
    """A float column without nulls -> a writable numpy copy (torch wants writable memory)."""
    data, width = array.buffers()[1], np.dtype(dtype).itemsize
    return np.frombuffer(data, dtype, count=len(array), offset=array.offset * width).copy()
