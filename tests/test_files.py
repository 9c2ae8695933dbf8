"""CSV and JSON artifacts: exact float round trips, atomic writes, clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from harness.project import run_module
from linreg.core.errors import PipelineError
from linreg.core.records import Truth
from linreg.io import tables
from linreg.io.artifacts import read_precision, read_test_mae, read_truth, write_truth
from linreg.io.files import (
    JSON_DEPTH,
    all_or_none,
    atomic_file,
    chunks,
    file_digest,
    read_json,
    write_bytes_atomic,
    write_json,
)
from linreg.io.tables import count_rows, csv_blocks, part_digests, read_csv, write_csv

TRICKY = np.array(
    [0.0, 0.02, 1 / 3, -2.5e-38, 1e-45, 3.4028235e38, 0.1 + 0.2, 7.0, -0.0], dtype=np.float32
)


def test_float32_round_trips_bit_for_bit(tmp_path: Path):
    path = tmp_path / "t.csv"
    write_csv(path, {"x": TRICKY, "y": TRICKY[::-1].copy()})
    back = read_csv(path, ("x", "y"))
    assert back["x"].dtype == np.float32
    np.testing.assert_array_equal(back["x"].view(np.int32), TRICKY.view(np.int32))
    np.testing.assert_array_equal(back["y"], TRICKY[::-1])


def test_csv_is_plain_and_shortest(tmp_path: Path):
    path = tmp_path / "t.csv"
    write_csv(path, {"epoch": np.arange(3), "loss": np.array([0.02, 0.5, 1], dtype=np.float32)})
    assert path.read_text() == "epoch,loss\n0,0.02\n1,0.5\n2,1\n"


def test_pandas_reads_the_same_values(tmp_path: Path):
    path = tmp_path / "t.csv"
    write_csv(path, {"x": TRICKY})
    frame = pd.read_csv(path, dtype={"x": np.float32})
    np.testing.assert_array_equal(frame["x"].to_numpy(), TRICKY)


def test_same_data_same_bytes(tmp_path: Path):
    write_csv(tmp_path / "a.csv", {"x": TRICKY})
    write_csv(tmp_path / "b.csv", {"x": TRICKY})
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_rows_formatted_on_several_cores_are_written_in_order(tmp_path: Path, monkeypatch):
    """A chunk split among threads (as on a 3-core machine) gives pyarrow's text of the whole."""
    monkeypatch.setattr(tables, "_CORES", 3)
    rows = 3 * tables.FORMAT_ROWS + 7  # three pieces, of unequal length
    x = np.random.default_rng(0).standard_normal(rows).astype(np.float32)
    write_csv(tmp_path / "t.csv", {"x": x, "y": x[::-1].copy()})
    whole = pa.BufferOutputStream()
    options = pacsv.WriteOptions(include_header=False)
    pacsv.write_csv(pa.table({"x": x, "y": x[::-1].copy()}), whole, options)
    assert (tmp_path / "t.csv").read_bytes() == b"x,y\n" + whole.getvalue().to_pybytes()


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path: Path, monkeypatch):
    path = tmp_path / "out.bin"
    write_bytes_atomic(path, b"old")

    def interrupted(fd: int) -> None:  # Ctrl-C after the bytes are written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr("linreg.io.files.os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # no temporary file left


def test_atomic_write_creates_folders(tmp_path: Path):
    write_bytes_atomic(tmp_path / "a" / "b" / "c.txt", b"hi")
    assert (tmp_path / "a" / "b" / "c.txt").read_bytes() == b"hi"


def test_json_keeps_order_and_precision(tmp_path: Path):
    path = tmp_path / "m.json"
    write_json(path, {"b": 0.1 + 0.2, "a": None})
    assert list(json.loads(path.read_text())) == ["b", "a"]
    assert json.loads(path.read_text())["b"] == 0.1 + 0.2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x,z\n1,2\n", r"missing column\(s\) y; found: x, z; expected: x, y"),
        ("x,y\n", r"no data rows \(a header line only\)$"),
        ("x,y", r"no data rows \(a header line only\)$"),
        ("", "empty file; expected a header line x,y and data rows"),
        ("x,y\n1,2\n3,abc\n", "line 3, column y: 'abc' is not a number"),
        ("x,y\n1,2\n3,\n", "line 3, column y: '' is not a number"),
        ("x,y\n1,2\n3\n", "line 3: 1 field\\(s\\) '3' where the header has 2; a truncated"),
        ("x,y\n1,2\n3,4,5\n", "line 3: 3 field\\(s\\) '3,4,5' where the header has 2"),
        ("x,y\n1,nan\n", r"line 2, column y: nan is not a finite number"),
        ("x,y\n1,2\n3,inf\n", r"line 3, column y: inf is not a finite number"),
        ("x,y\n1,2\n-inf,4\n", r"line 3, column x: -inf is not a finite number"),
        ("x;y\n1;2\n", r"missing column\(s\) x, y; found: x;y \(separated by ';'\?"),
        # the tab shown escaped, as everything an error line shows: one line, no control bytes
        ("x\ty\n1\t2\n", r"missing column\(s\) x, y; found: x\\ty \(separated by '\\t'\?"),
    ],
)
def test_bad_csv_is_one_line_naming_the_file(tmp_path: Path, text, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PipelineError, match=expected) as error:
        read_csv(path, ("x", "y"))
    assert str(error.value).startswith(str(path))
    assert "\n" not in str(error.value)


def test_float64_reads_each_number_as_written_and_writes_it_back_the_same(tmp_path: Path):
    """What split relies on to keep a CSV source's precision and the lesson's bytes: a float32's
    shortest text and a float64's both come back from a float64 read unchanged."""
    rng = np.random.default_rng(3)
    singles = (rng.standard_normal(1000) * np.exp(rng.uniform(-30, 30, 1000))).astype(np.float32)
    doubles = rng.standard_normal(1000) * np.exp(rng.uniform(-30, 30, 1000))
    write_csv(tmp_path / "in.csv", {"single": singles, "double": doubles})
    columns = read_csv(tmp_path / "in.csv", dtype=np.float64)
    assert columns["double"].tolist() == doubles.tolist()
    assert columns["single"].astype(np.float32).tolist() == singles.tolist()
    write_csv(tmp_path / "out.csv", columns)
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "in.csv").read_bytes()


def test_a_number_beyond_float32s_range_is_refused_in_either_precision(tmp_path: Path):
    path = tmp_path / "big.csv"
    path.write_text("x,y\n1,2\n-1e39,3\n")
    with pytest.raises(PipelineError, match=r"line 3, column x: -inf is not a finite number$"):
        read_csv(path)
    beyond = r"line 3, column x: -1e\+39 is beyond float32's range \(magnitude at most 3.4"
    with pytest.raises(PipelineError, match=beyond):
        read_csv(path, dtype=np.float64)


def test_columns_are_found_by_name_in_any_order(tmp_path: Path):
    (tmp_path / "swapped.csv").write_text("y,x\n1,2\n")
    columns = read_csv(tmp_path / "swapped.csv", ("x", "y"))
    assert (columns["x"].tolist(), columns["y"].tolist()) == ([2.0], [1.0])


def test_missing_file_says_which(tmp_path: Path):
    with pytest.raises(PipelineError, match=r"nope\.csv: file not found"):
        read_csv(tmp_path / "nope.csv", ("x",))


def test_sigkill_mid_write_leaves_the_old_file_and_the_next_write_sweeps_up(tmp_path: Path):
    (tmp_path / "out.bin").write_bytes(b"old")
    (tmp_path / ".other.bin.0123abcd.tmp").write_bytes(b"another file's")
    killed = run_module("tests.programs.killed_mid_write", str(tmp_path / "out.bin"), check=False)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "out.bin").read_bytes() == b"old"  # never torn: old, or (below) new
    (stale,) = tmp_path.glob(".out.bin.*.tmp")
    assert stale.read_bytes() == b"new"

    write_bytes_atomic(tmp_path / "out.bin", b"newer")
    assert (tmp_path / "out.bin").read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.bin.0123abcd.tmp", "out.bin"]


def test_csv_written_in_chunks_is_byte_identical(tmp_path: Path, monkeypatch):
    values = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    write_csv(tmp_path / "whole.csv", {"x": values, "y": -values})
    monkeypatch.setattr("linreg.io.tables.BLOCK_ROWS", 7)  # 143 chunks, the last one short
    write_csv(tmp_path / "chunks.csv", {"x": values, "y": -values})
    assert (tmp_path / "chunks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert read_csv(tmp_path / "chunks.csv", ("x", "y"))["x"].tobytes() == values.tobytes()


def test_csv_of_no_rows_is_a_header(tmp_path: Path):
    write_csv(tmp_path / "empty.csv", {"x": np.empty(0, np.float32)})
    assert (tmp_path / "empty.csv").read_text() == "x\n"


def test_all_or_none_keeps_every_old_file_when_a_later_write_fails(tmp_path: Path):
    first, second = tmp_path / "metrics.json", tmp_path / "predictions.csv"
    write_json(first, {"old": 1})
    write_bytes_atomic(second, b"old")

    def write_both() -> None:
        with all_or_none():
            write_json(first, {"new": 2})
            with atomic_file(second) as file:
                file.write(b"new")
                raise OSError(28, "disk full")  # as a full disk fails a write

    with pytest.raises(OSError, match="disk full") as failure:
        write_both()
    assert failure.value.filename == str(second)  # the target, not the temporary file
    assert json.loads(first.read_text()) == {"old": 1}
    assert second.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.json", "predictions.csv"]


def test_all_or_none_replaces_every_file_at_its_end(tmp_path: Path):
    first, second = tmp_path / "a", tmp_path / "b"
    with all_or_none():
        write_bytes_atomic(first, b"1")
        write_bytes_atomic(second, b"2")
        assert not first.exists()  # not before the block ends
    assert (first.read_bytes(), second.read_bytes()) == (b"1", b"2")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("x,y\n0,é\n".encode("latin-1"), r"not UTF-8 text \(byte 0xe9 at offset 6\)"),
        ("x,y\n0,1\n".encode("utf-16"), r"not UTF-8 text \(byte 0xff at offset 0\)"),
        ("x,y\n0,1\n".encode("utf-16-le"), r"not UTF-8 text \(a NUL byte at offset 1: UTF-16\?\)"),
    ],
)
def test_a_file_in_another_encoding_is_named_so(tmp_path: Path, data: bytes, message: str):
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    with pytest.raises(PipelineError, match=message):
        read_csv(path, ("x", "y"))


def test_a_huge_bad_cell_is_shown_shortened(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n0," + "a" * 1_000_000 + "\n")
    with pytest.raises(PipelineError) as error:
        read_csv(path, ("x", "y"))
    assert (
        str(error.value)
        == f"{path}: line 2, column y: '{'a' * 59}... (1,000,002 characters) is not a number"
    )


def test_a_device_or_folder_is_not_a_file(tmp_path: Path):
    with pytest.raises(PipelineError, match="not a regular file"):
        read_csv("/dev/null", ("x", "y"))
    with pytest.raises(PipelineError, match="a folder; expected a file"):
        read_csv(tmp_path, ("x", "y"))


def test_json_refuses_nan(tmp_path: Path):
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_json(tmp_path / "m.json", {"test_mae": float("nan")})
    assert not list(tmp_path.iterdir())


# Lines of many lengths; the last one with no newline; \r\n line ends in one of the cases.
UNEVEN = "x,y\n" + "".join(f"{i / 7:.{i % 9}f},{-i}\n" for i in range(40)) + "1e3,2.5\n"


@pytest.mark.parametrize("parts", [1, 2, 3, 5, 8, 45, 60])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_the_parts_of_a_file_hold_each_line_once_in_order(tmp_path: Path, parts, newline):
    path = tmp_path / "data.csv"
    path.write_bytes(UNEVEN.replace("\n", newline).encode())
    read = [read_csv(path, part=part, parts=parts) for part in range(parts)]
    for name, values in read_csv(path).items():
        joined = np.concatenate([columns[name] for columns in read])
        np.testing.assert_array_equal(joined, values)


def test_a_part_reads_its_own_lines_alone(tmp_path: Path):
    """A bad line in the second half stops the part that holds it, at the right line number,
    and not the part before it."""
    path = tmp_path / "data.csv"
    lines = [f"{i:03},{i:03}" for i in range(100)]  # lines of one length: 50 in each half
    lines[80] = "080,nan"
    path.write_text("x,y\n" + "\n".join(lines) + "\n")
    assert read_csv(path, part=0, parts=2)["y"].tolist() == list(range(50))
    with pytest.raises(PipelineError, match=r"line 82, column y: nan is not a finite number"):
        read_csv(path, part=1, parts=2)


def test_a_header_alone_has_no_parts(tmp_path: Path):
    path = tmp_path / "data.csv"
    path.write_text("x,y\n")
    with pytest.raises(PipelineError, match=r"data.csv: no data rows \(a header line only\)"):
        read_csv(path, part=0, parts=2)


def test_the_parts_digests_are_the_files_whatever_the_parts(tmp_path: Path, monkeypatch):
    """Blocks at fixed offsets, each hashed by the part it begins in: the parts' lists joined
    are the whole file's for 1, 2 or 3 parts, and a changed byte changes its block's alone."""
    monkeypatch.setattr(tables, "DIGEST_BLOCK", 7)
    path = tmp_path / "data.csv"
    path.write_text(UNEVEN)
    data = path.read_bytes()
    whole = [hashlib.sha256(data[at : at + 7]).digest() for at in range(0, len(data), 7)]
    assert file_digest(path) == hashlib.sha256(data).digest()
    for parts in (1, 2, 3):
        joined = [digest for part in range(parts) for digest in part_digests(path, part, parts)]
        assert joined == whole, parts
    changed = tmp_path / "changed.csv"
    changed.write_bytes(data.replace(b"-39", b"-38"))
    other = part_digests(changed)
    assert sum(a != b for a, b in zip(other, whole, strict=True)) == 1


@pytest.mark.parametrize(
    "body",
    ["0,1\n2,3\n", "0,1\r\n2,3\r\n", "0,1\n\n2,3\n", "\n0,1\n2,3\n", "0,1\n" * 3000],
    ids=["plain", "crlf", "a blank line", "a blank first line", "many"],
)
def test_rows_are_counted_as_they_are_read(tmp_path: Path, body: str):
    path = tmp_path / "data.csv"
    path.write_text("x,y\n" + body, newline="")
    assert count_rows(path) == len(read_csv(path)["x"])


def test_a_file_that_changed_since_its_rows_were_counted_is_refused(tmp_path: Path):
    path = tmp_path / "data.csv"
    path.write_text("x,y\n0,1\n2,3\n")
    rows = count_rows(path)
    path.write_text("x,y\n0,1\n")
    with pytest.raises(
        PipelineError, match=r"data.csv: 1 row\(s\) read where 2 were counted: the file"
    ):
        list(csv_blocks(path, rows=rows))


def test_a_file_of_ours_cut_short_is_refused_and_a_users_is_read(tmp_path: Path):
    """Every file the pipeline writes ends in a newline: one that does not was cut short, and
    its last number may be cut too. A user's own CSV need not end in one."""
    path = tmp_path / "data.csv"
    path.write_text("x,y\n0.78,0.84599996\n0.8,0.84")
    torn = r"data\.csv: its last line has no end: the file was cut short \(every file the"
    for read in (read_csv, count_rows, lambda path: list(csv_blocks(path))):
        with pytest.raises(PipelineError, match=torn):
            read(path)
    assert read_csv(path, ours=False)["y"].tolist() == [np.float32(0.84599996), np.float32(0.84)]


def test_an_output_that_cannot_be_replaced_is_named_and_leaves_no_temporary(tmp_path: Path):
    """The rename at the end of all_or_none fails (here the target is a folder; an immutable
    file fails the same way): the error names the target, and no temporary file stays."""
    first, second = tmp_path / "metrics.json", tmp_path / "predictions.csv"
    second.mkdir()
    (second / "keep").write_text("")

    def write_both() -> None:
        with all_or_none():
            write_json(first, {"new": 1})
            write_bytes_atomic(second, b"new")

    with pytest.raises(IsADirectoryError) as raised:
        write_both()
    assert raised.value.filename == str(second)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.json", "predictions.csv"]


def test_reading_a_file_that_shrinks_ends_where_it_ends(tmp_path: Path):
    """A file truncated while it is read (hashed, counted): the reading stops at its new end
    instead of waiting for bytes that never come."""
    path = tmp_path / "data.csv"
    path.write_bytes(b"x" * 3_000_000)
    with path.open("rb") as file:
        first = next(chunks(file, 3_000_000))
        os.truncate(path, 1_500_000)
        rest = list(chunks(file, 3_000_000 - len(first)))
    assert len(first) + sum(map(len, rest)) == 1_500_000
    assert file_digest(path, 0, 3_000_000) == hashlib.sha256(b"x" * 1_500_000).digest()


def test_a_byte_order_mark_is_read_as_one(tmp_path: Path):
    """Spreadsheets save UTF-8 with a byte-order mark: it is not part of the first name."""
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y\n1,2\n")
    assert list(read_csv(path)) == ["x", "y"]
    assert read_csv(path, ["x"])["x"].tolist() == [1.0]


def test_truth_json_records_the_datas_precision_when_it_is_not_float32(tmp_path: Path):
    path = tmp_path / "truth.json"
    write_truth(path, Truth(0.7, 0.3))
    assert json.loads(path.read_text()) == {"weight": 0.7, "bias": 0.3}  # the lesson's file
    assert (read_truth(path), read_precision(path)) == (Truth(0.7, 0.3), np.float32)
    write_truth(path, None, rows_dropped=2, precision=np.float64)
    assert (read_truth(path), read_precision(path)) == (None, np.float64)
    path.write_text('{"weight": null, "bias": null, "precision": "float16"}')
    with pytest.raises(PipelineError, match=r"truth\.json: expected .* one of float32, float64"):
        read_precision(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"weight": NaN, "bias": 0.3}', "NaN is not a JSON number"),
        ('{"weight": -Infinity, "bias": 0.3}', "-Infinity is not a JSON number"),
        ('{"weight": 1e400, "bias": 0.3}', "the number 1e400 is not a finite float"),
        ('{"weight": 1' + "0" * 400 + ', "bias": 0.3}', "beyond a float's range"),
        ("[" * 100_000 + "]" * 100_000, f"nested deeper than {JSON_DEPTH}"),
        ("[" * (JSON_DEPTH + 1) + "]" * (JSON_DEPTH + 1), f"nested deeper than {JSON_DEPTH}"),
    ],
    ids=["nan", "infinity", "overflow", "huge int", "deep", "one too deep"],
)
def test_json_a_user_can_edit_is_read_finite_and_shallow_or_refused_in_one_line(
    tmp_path, text, problem
):
    path = tmp_path / "truth.json"
    path.write_text(text)
    with pytest.raises(PipelineError, match=re.escape(problem)) as error:
        read_json(path, "run the generate stage first")
    assert str(error.value).startswith(f"{path}: not JSON")


def test_a_file_in_the_place_of_an_output_folder_is_one_line(tmp_path):
    (tmp_path / "comparison").write_text("x")
    target = tmp_path / "comparison/sub/report.md"
    with pytest.raises(PipelineError) as error:
        write_bytes_atomic(target, b"report")
    assert str(error.value) == (
        f"{tmp_path / 'comparison'}: a file, where a folder must be (it holds "
        f"{target.parent}); move it away, or remove it"
    )
    assert (tmp_path / "comparison").read_text() == "x"


def test_a_pipe_in_the_place_of_a_data_file_is_refused_before_it_is_read(tmp_path):
    """The resume fingerprint hashes a data file before its reader runs: a pipe would hang."""
    os.mkfifo(tmp_path / "train.csv")
    with pytest.raises(PipelineError, match="not a regular file"):
        part_digests(tmp_path / "train.csv", 0, 2)


@pytest.mark.parametrize("text", ['{"test_rmse": 0.5}', "[0.5]", '{"test_mae": "0.5"}'])
def test_metrics_without_a_test_mae_are_one_line_naming_the_file(tmp_path: Path, text: str):
    path = tmp_path / "metrics.json"
    path.write_text(text)
    with pytest.raises(PipelineError, match=r"metrics.json: expected an object with a number"):
        read_test_mae(path)
