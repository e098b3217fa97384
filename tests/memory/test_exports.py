"""CSV exports of memory: cells a spreadsheet would run as formulas are neutralised."""

import csv
import io

import polars as pl

from memory.exports import encode_chunks, spreadsheet_safe


def test_it_prefixes_text_cells_that_start_like_a_formula():
    frame = pl.DataFrame(
        {
            "customer": ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "plain", "-7", ""],
            "weight": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
        }
    )
    text = b"".join(encode_chunks([frame], "csv")).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["customer"] for row in rows] == [
        "'=1+2",
        "'+SUM(A1)",
        "'-2+3",
        "'@cmd",
        "'\tx",
        "'\rx",
        "plain",
        "-7",  # a number written as text is still a number, not a formula
        "",
    ]
    assert rows[0]["weight"] == "-0.5"  # numeric columns are never touched


def test_it_keeps_json_lines_unchanged():
    frame = pl.DataFrame({"customer": ["=1+2"]})
    assert b"".join(encode_chunks([frame], "jsonl")) == b'{"customer":"=1+2"}\n'


def test_it_leaves_plain_numbers_and_ordinary_text_alone():
    assert spreadsheet_safe("-1.5e3") == "-1.5e3"
    assert spreadsheet_safe("+42") == "+42"
    assert spreadsheet_safe("- item") == "'- item"
    assert spreadsheet_safe("hello=world") == "hello=world"
