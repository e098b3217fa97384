"""Read event files line by line: Segment JSONL (plain, .gz, .xz) and CSV with a column mapping."""

import csv
import gzip
import io
import lzma
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from memory.ingest.segment import SegmentEvent
from memory.ingest.timestamps import parse_time


@dataclass(frozen=True)
class SourceLine:
    """One line of an input file: its number and the event it holds, or why it holds none."""

    line: int
    payload: Any = None
    error: str = ""
    field: str = ""


def open_binary(path: Path) -> IO[bytes]:
    """Open a file for reading bytes, decompressing .gz and .xz."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def numbered_lines(path: Path, block_size: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line without its end) from a file, read a megabyte at a time.

    Reading blocks and splitting them costs far less than a readline per line, which the
    gzip and lzma readers answer with several Python calls each.
    """
    number = 0
    rest = b""
    with open_binary(path) as handle:
        while block := handle.read(block_size):
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                number += 1
                yield number, line
    if rest:
        yield number + 1, rest


def count_lines(path: Path, block_size: int = 1 << 20) -> int:
    """Return how many lines `numbered_lines` will yield (a last line without its end counts)."""
    count = 0
    last = b"\n"
    with open_binary(path) as handle:
        while block := handle.read(block_size):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def jsonl_lines(path: Path) -> Iterator[SourceLine | None]:
    """Yield each line of a Segment-format JSONL file as raw JSON (None for a blank line)."""
    for number, line in numbered_lines(path):
        stripped = line.strip()
        yield SourceLine(number, payload=stripped) if stripped else None


@dataclass(frozen=True)
class CsvMapping:
    """Which CSV columns hold what; unmapped columns become properties (or only `properties`)."""

    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None
    event_name: str | None = None
    timestamp: str | None = None
    message_id: str | None = None
    type: str | None = None
    properties: list[str] | None = None
    numeric: list[str] = field(default_factory=list)
    delimiter: str = ","

    def check(self, header: list[str]) -> None:
        """Raise ValueError naming any mapped column the header lacks."""
        mapped = [
            self.user_id,
            self.anonymous_id,
            self.event,
            self.timestamp,
            self.message_id,
            self.type,
            *(self.properties or []),
            *self.numeric,
        ]
        missing = [column for column in mapped if column and column not in header]
        if missing:
            raise ValueError(f"columns not in the header: {', '.join(missing)}")
        if not self.user_id and not self.anonymous_id:
            raise ValueError("map a user id column or an anonymous id column")
        if not self.event and not self.event_name:
            raise ValueError("map an event column or give a constant event name")


def csv_lines(path: Path, mapping: CsvMapping) -> Iterator[SourceLine | None]:
    """Yield each CSV record as a Segment track (or `type` column) event."""
    with io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=mapping.delimiter)
        header = next(reader, None)
        if header is None:
            return
        mapping.check(header)
        special = {
            mapping.user_id,
            mapping.anonymous_id,
            mapping.event,
            mapping.timestamp,
            mapping.message_id,
            mapping.type,
        }
        property_columns = mapping.properties or [c for c in header if c not in special]
        numeric = set(mapping.numeric)
        position = {column: index for index, column in enumerate(header)}
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. a NUL byte; the reader goes on with the next line
                yield SourceLine(reader.line_num, error=f"unreadable CSV: {error}")
                continue
            number = reader.line_num
            if not any(cell.strip() for cell in record):
                yield None
                continue
            if len(record) != len(header):
                yield SourceLine(
                    number, error=f"has {len(record)} fields; the header has {len(header)}"
                )
                continue
            yield _csv_event(number, record, mapping, position, property_columns, numeric)


def _csv_event(number, record, mapping, position, property_columns, numeric) -> SourceLine:
    def cell(column: str | None) -> str:
        return record[position[column]].strip() if column else ""

    properties: dict[str, Any] = {}
    for column in property_columns:
        value = record[position[column]]
        if column in numeric and value.strip():
            try:
                properties[column] = float(value) if re.search(r"[.eE]", value) else int(value)
            except ValueError:
                return SourceLine(number, error=f"{value!r} is not a number", field=column)
        elif value != "":
            properties[column] = value
    timestamp = None
    if mapping.timestamp:
        text = cell(mapping.timestamp)
        try:
            timestamp = parse_time(text)
        except ValueError:
            return SourceLine(
                number, error=f"{text!r} is not an ISO 8601 time", field=mapping.timestamp
            )
    event = SegmentEvent(
        type=cell(mapping.type) or "track",
        userId=cell(mapping.user_id) or None,
        anonymousId=cell(mapping.anonymous_id) or None,
        event=cell(mapping.event) or mapping.event_name,
        messageId=cell(mapping.message_id) or None,
        properties=properties,
        timestamp=timestamp,
    )
    return SourceLine(number, payload=event)
