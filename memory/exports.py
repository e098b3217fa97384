"""Serialise exported memory as CSV or JSON Lines, chunk by chunk (constant memory)."""

import io
from collections.abc import Iterable, Iterator

import polars as pl

FORMATS = ("csv", "jsonl")


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
            frame.write_csv(buffer, include_header=not header_written)
            header_written = True
        else:
            frame.write_ndjson(buffer)
        yield buffer.getvalue()
