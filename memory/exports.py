"""Serialise exported memory as CSV or JSON Lines, chunk by chunk (constant memory).

CSV text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a
tab or a carriage return) get a leading `'` (OWASP's CSV injection advice). Numeric columns
are never touched, and a text cell that is just a number (`-3`, `+1.5e3`) stays as it is: a
spreadsheet reads it as that number, not a formula. JSON Lines carries every value unchanged.
"""

import io
import re
from collections.abc import Iterable, Iterator

import polars as pl

FORMATS = ("csv", "jsonl")


FORMULA_START = "=+-@\t\r"
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_PLAIN_NUMBER_RE = re.compile(_PLAIN_NUMBER)


def spreadsheet_safe(value: str) -> str:
    """Return the text with a leading `'` when a spreadsheet would read it as a formula."""
    if value and value[0] in FORMULA_START and not _PLAIN_NUMBER_RE.match(value):
        return "'" + value
    return value


def _spreadsheet_safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(
            pl.col(name).str.contains(f"^[{re.escape(FORMULA_START)}]")
            & ~pl.col(name).str.contains(_PLAIN_NUMBER)
        )
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in texts
    )


def _stringify_times(frame: pl.DataFrame) -> pl.DataFrame:
    times = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        if frame.schema[name].time_zone
        else pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        for name in times
    )


def encode_chunks(chunks: Iterable[pl.DataFrame], fmt: str) -> Iterator[bytes]:
    """Yield the bytes of each chunk in the format; CSV writes its header once."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    header_written = False
    for frame in chunks:
        frame = _stringify_times(frame)
        buffer = io.BytesIO()
        if fmt == "csv":
            frame = _spreadsheet_safe_frame(frame)
            frame.write_csv(buffer, include_header=not header_written)
            header_written = True
        else:
            frame.write_ndjson(buffer)
        yield buffer.getvalue()
