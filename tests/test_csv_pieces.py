"""A CSV read in pieces is the CSV read whole: same rows, same nulls, same errors, gzipped or not."""

from __future__ import annotations

import gzip

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cxrdata.errors import CxrdataError
from cxrdata.io.csvfiles import pieces, read_text_csv

WHOLE = 1 << 30  # one piece: the file as polars reads it whole
TEXTS = {
    "plain": "a,b,c\n1,2,3\n4,5,6\n",
    "no_final_line_end": "a,b,c\n1,2,3\n4,5,6",
    "crlf": "a,b,c\r\n1,2,3\r\n4,5,6\r\n",
    "bom": "\ufeffa,b,c\n1,2,3\n4,5,6\n",
    "short_rows": "a,b,c\n1,2,3\n4\n7,8,9\n10,11\n",
    "only_short_rows": "a,b,c\n1\n2,3\n4\n5\n6,7\n",  # never a place to cut: one piece
    "blank_lines": "a,b,c\n1,2,3\n\n\n4,5,6\n\n7,8,9\n",  # polars reads a blank line as a row of nulls
    "trailing_blank_lines": "a,b,c\n1,2,3\n\n\n",
    "quoted_line_end": "a,b,c\n1,2,3\n4,\"x\ny\",6\n7,8,9\n",
    "quote_late": "a,b,c\n1,2,3\n4,5,6\n7,\"8\n8\",9\n10,11,12\n",
    "multibyte": "a,b,c\n1,é,3\n4,☃,6\n" * 5,
    "empty_cells": "a,b,c\n,,\n1,,\n,,3\n",
    "header_only": "a,b,c\n",
    "repeated_header_name": "a,a,c\n1,2,3\n4,5,6\n",
}


def _write(tmp_path, name: str, data: bytes, gz: bool):
    path = tmp_path / (name + (".csv.gz" if gz else ".csv"))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "gz"])
@pytest.mark.parametrize("name", [*TEXTS, "not_utf8"])
def test_pieces_of_any_size_read_as_the_whole_file(tmp_path, name, gz):
    data = b"a,b,c\n1,\xff\xfe,3\n4,5,6\n" if name == "not_utf8" else TEXTS[name].encode()
    path = _write(tmp_path, name, data, gz)
    for distinct in (None, ["a"]):  # text columns, or Categorical ones
        whole = read_text_csv(path, distinct_columns=distinct, piece_bytes=WHOLE)
        for size in (1, 2, 3, 5, 8, 13, 64):
            assert b"".join(pieces(path, size)) == data
            assert_frame_equal(read_text_csv(path, distinct_columns=distinct, piece_bytes=size), whole,
                               categorical_as_str=True)
    if name == "not_utf8":
        assert whole["b"][0] == "\ufffd\ufffd", "undecodable bytes are replaced, in the header line's read too"


@pytest.mark.parametrize(("data", "message"), [(b"a,b,c\n1,2,3\n4,5,6,7\n", "cannot be parsed as CSV"),
                                             (b"\n\na,b,c\n1,2,3\n", "no header line"),
                                             (b"a,b,c\n1,2\"x,3\n4,5,6\n", "cannot be parsed as CSV")],
                         ids=["wide_row", "blank_first", "quote_inside_a_field"])
def test_a_bad_table_fails_in_one_line_whatever_the_pieces(tmp_path, data, message):
    path = _write(tmp_path, "bad", data, gz=True)
    for size in (1, 4, WHOLE):
        with pytest.raises(CxrdataError, match=message):
            read_text_csv(path, piece_bytes=size)


@pytest.mark.parametrize("damage", ["truncated", "flipped_byte", "flipped_in_the_header", "crc"])
def test_a_damaged_gzip_fails_in_one_line_whatever_the_pieces(tmp_path, damage):
    packed = bytearray(gzip.compress(("a,b\n" + "".join(f"{i},{i}\n" for i in range(50_000))).encode()))
    if damage == "truncated":
        packed = packed[: len(packed) // 2]
    else:
        packed[{"flipped_byte": len(packed) // 2, "flipped_in_the_header": 30, "crc": -6}[damage]] ^= 0xFF
    path = tmp_path / "damaged.csv.gz"
    path.write_bytes(bytes(packed))
    for size in (1000, WHOLE):
        with pytest.raises(CxrdataError, match="cannot be (read|parsed) as CSV"):
            read_text_csv(path, piece_bytes=size)


def test_a_cut_never_falls_after_a_quote(tmp_path):
    path = _write(tmp_path, "quoted", b"a,b\n1,2\n3,\"x\n" + b"4,5\n" * 50 + b"\"\n", gz=False)
    cut = list(pieces(path, 4))
    assert cut[0] == b"a,b\n" and b"".join(cut[1:]).startswith(b"1,2\n") and b'"' in cut[-1]
    assert all(b'"' not in piece for piece in cut[:-1]), "from the first quote on, the rest is one piece"


def test_categorical_columns_hold_two_byte_codes_and_more_values_fall_back_to_four(tmp_path):
    few = _write(tmp_path, "few", ("id,v\n" + "".join(f"{i},{i % 3}\n" for i in range(100))).encode(), gz=False)
    frame = read_text_csv(few, distinct_columns=["id"])
    assert frame.schema["id"] == pl.String and frame["v"].to_physical().dtype == pl.UInt16
    many = _write(tmp_path, "many", ("id,v\n" + "".join(f"{i},{i}\n" for i in range(70_000))).encode(), gz=True)
    frame = read_text_csv(many, distinct_columns=["id"], piece_bytes=100_000)
    assert frame["v"].to_physical().dtype == pl.UInt32
    assert frame["v"].cast(pl.String).to_list() == [str(i) for i in range(70_000)]
