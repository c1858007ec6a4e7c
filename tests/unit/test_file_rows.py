"""The row reconciliation's own count of a file's rows (taxi_platform/checks/file_rows.py): what
every backend's reader makes of the same bytes, whatever the line endings, the last line, empty
lines, gzip members or block boundaries."""

from __future__ import annotations

import gzip
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxi_platform.checks import file_rows as module
from taxi_platform.checks.file_rows import file_rows

HEADER = b"VendorID,tpep_pickup_datetime,fare_amount"


def _rows(n: int) -> list[bytes]:
    return [f"1,2019-01-01 00:{i % 60:02d}:00,{i}.5".encode() for i in range(n)]


@pytest.mark.parametrize("ending, last_line_ended", [
    (b"\r\n", True), (b"\n", True), (b"\r\n", False), (b"\n", False)])
def test_a_csv_has_its_lines_less_the_header_whatever_the_line_end_and_the_last_line(
        tmp_path, ending, last_line_ended):
    text = ending.join([HEADER, *_rows(5)]) + (ending if last_line_ended else b"")
    plain, zipped = tmp_path / "m.csv", tmp_path / "m.csv.gz"
    plain.write_bytes(text)
    zipped.write_bytes(gzip.compress(text))
    assert file_rows(plain) == file_rows(zipped) == 5


def test_lines_ending_in_crlf_and_lf_mixed_count_once_each(tmp_path):
    rows = _rows(7)
    text = HEADER + b"\r\n" + b"".join(r + (b"\n" if i % 2 else b"\r\n") for i, r in enumerate(rows))
    (tmp_path / "m.csv.gz").write_bytes(gzip.compress(text))
    assert file_rows(tmp_path / "m.csv.gz") == 7


def test_empty_lines_are_no_rows_as_every_reader_skips_them(tmp_path):
    text = b"\r\n".join([HEADER, b"", *_rows(2), b"", b"", *_rows(3), b""]) + b"\r\n\r\n"
    (tmp_path / "m.csv.gz").write_bytes(gzip.compress(text))
    assert file_rows(tmp_path / "m.csv.gz") == 5


def test_a_header_alone_or_an_empty_file_has_no_rows(tmp_path):
    (tmp_path / "h.csv.gz").write_bytes(gzip.compress(HEADER + b"\r\n"))
    (tmp_path / "e.csv").write_bytes(b"")
    assert file_rows(tmp_path / "h.csv.gz") == file_rows(tmp_path / "e.csv") == 0


def test_a_gzip_file_of_several_members_is_counted_to_its_end(tmp_path):
    first = gzip.compress(b"\r\n".join([HEADER, *_rows(3)]) + b"\r\n")
    second = gzip.compress(b"\r\n".join(_rows(4)) + b"\r\n")
    (tmp_path / "m.csv.gz").write_bytes(first + second)
    assert file_rows(tmp_path / "m.csv.gz") == 7


def test_a_truncated_gzip_file_is_an_error_not_a_count(tmp_path):
    data = gzip.compress(b"\r\n".join([HEADER, *_rows(2000)]))
    (tmp_path / "m.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EOFError):
        file_rows(tmp_path / "m.csv.gz")


def test_a_parquet_file_has_the_rows_its_footer_declares(tmp_path):
    table = pa.table({"VendorID": list(range(1234)), "fare_amount": [1.5] * 1234})
    pq.write_table(table, tmp_path / "m.parquet", row_group_size=500)
    assert file_rows(tmp_path / "m.parquet") == 1234


def test_the_count_is_the_same_however_the_stream_is_cut_into_blocks():
    rnd = random.Random(7)
    for _ in range(5000):
        data = bytes(rnd.choice(b"ab,\r\n\n") for _ in range(rnd.randint(0, 40)))
        lines = data.split(b"\n")
        expected = sum(1 for line in lines[:-1] if line not in (b"", b"\r")) + (lines[-1] not in (b"", b"\r"))
        counter, at = module._LineCounter(), 0
        while at < len(data):
            step = rnd.randint(1, 6)
            counter.feed(data[at:at + step])
            at += step
        assert counter.close() == expected, data
