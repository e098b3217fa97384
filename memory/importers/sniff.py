"""Check an uploaded file before it is stored: its compression, its format, its first lines.

Only the first bytes are read (decompressed as far as they go), so a bad upload is refused at
once with a reason; a line that goes wrong later is reported with its number by the import.
"""

import codecs
import csv
import lzma
import re
import zlib
from dataclasses import dataclass
from pathlib import PurePath

import msgspec

from memory.importers.lines import CsvMapping

HEAD_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
COMPRESSIONS = {".gz": "gzip", ".xz": "xz"}
JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
# The Starbucks rewards data: each role's canonical file name (the importer opens these).
STARBUCKS_ROLES = {"portfolio": "portfolio.json", "profile": "profile.json"}
TRANSCRIPT = re.compile(r"^transcript\.json(\.gz|\.xz)?$")


class BadFile(ValueError):
    """An upload that cannot be imported, and why, said to the person who sent it."""

    def __init__(self, message: str, field: str = "files"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Sniffed:
    """What an events file holds: jsonl or csv, its compression suffix, its name when stored."""

    kind: str
    compression: str
    stored_name: str


def compression_of(name: str, head: bytes) -> str:
    """Return "", ".gz" or ".xz" from the file's first bytes; refuse a name that says otherwise."""
    found = ".gz" if head.startswith(GZIP_MAGIC) else ".xz" if head.startswith(XZ_MAGIC) else ""
    named = PurePath(name).suffix.lower()
    if named in COMPRESSIONS and named != found:
        raise BadFile(f"{name} is named {named} but is not {COMPRESSIONS[named]}-compressed.")
    return found


def text_head(name: str, head: bytes, compression: str) -> str:
    """Return the start of the file as text, decompressed as far as the head allows."""
    try:
        if compression == ".gz":
            head = zlib.decompressobj(wbits=31).decompress(head, HEAD_BYTES)
        elif compression == ".xz":
            head = lzma.LZMADecompressor().decompress(head, max_length=HEAD_BYTES)
    except (zlib.error, lzma.LZMAError) as error:
        raise BadFile(f"{name} could not be decompressed ({error}).") from None
    if b"\x00" in head:
        raise BadFile(f"{name} is not a text file (it holds NUL bytes).")
    try:
        # Not final: the head may end in the middle of a character.
        return codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError as error:
        raise BadFile(f"{name} is not UTF-8 text ({error.reason} at byte {error.start}).") from None


def _first_line(text: str) -> tuple[int, str] | None:
    """Return the number and text of the first non-blank whole line, if the head holds one."""
    lines = text.split("\n")
    complete = lines if len(text) < HEAD_BYTES else lines[:-1]
    for number, line in enumerate(complete, start=1):
        if line.strip():
            return number, line.strip()
    return None


def _check_json_object(name: str, text: str, what: str) -> None:
    first = _first_line(text)
    if first is None:
        return
    number, line = first
    try:
        decoded = msgspec.json.decode(line)
    except msgspec.DecodeError as error:
        raise BadFile(f"Line {number} of {name} is not JSON ({error}); {what}") from None
    if not isinstance(decoded, dict):
        raise BadFile(f"Line {number} of {name} is not a JSON object; {what}")


def events_file_sniff(*, name: str, head: bytes, kind: str, mapping: CsvMapping) -> Sniffed:
    """Return what an events file holds (kind "auto" guesses it); raise BadFile saying why not."""
    if not head:
        raise BadFile(f"{name} is empty.")
    compression = compression_of(name, head)
    text = text_head(name, head, compression)
    if kind == "auto":
        stem = PurePath(name)
        if stem.suffix.lower() in COMPRESSIONS:
            stem = PurePath(stem.stem)
        if stem.suffix.lower() == ".csv":
            kind = "csv"
        elif stem.suffix.lower() in JSONL_SUFFIXES or text.lstrip().startswith("{"):
            kind = "jsonl"
        else:
            kind = "csv"
    if kind == "jsonl":
        _check_json_object(name, text, "a JSONL file holds one Segment call (an object) a line.")
    else:
        header_line = text.split("\n", 1)[0].rstrip("\r")
        header = next(csv.reader([header_line], delimiter=mapping.delimiter), [])
        try:
            mapping.check(header)
        except ValueError as error:
            raise BadFile(f"{name}: {error}.", field="csv") from None
    return Sniffed(kind=kind, compression=compression, stored_name=f"events.{kind}{compression}")


def starbucks_roles(names: list[str]) -> dict[str, str] | None:
    """Map role (portfolio, profile, transcript) to the uploaded name; None if not those three."""
    roles = {}
    for name in names:
        base = PurePath(name).name.lower()
        role = next((r for r, canonical in STARBUCKS_ROLES.items() if base == canonical), None)
        if role is None and TRANSCRIPT.match(base):
            role = "transcript"
        if role is None or role in roles:
            return None
        roles[role] = name
    return roles if len(roles) == 3 else None


def starbucks_file_sniff(*, role: str, name: str, head: bytes) -> str:
    """Check one of the three Starbucks files; return the name to store it under."""
    if not head:
        raise BadFile(f"{name} is empty.")
    compression = compression_of(name, head)
    if role != "transcript" and compression:
        raise BadFile(f"{name} must not be compressed (only the transcript may be).")
    text = text_head(name, head, compression)
    _check_json_object(name, text, f"the Starbucks {role} file holds one JSON record a line.")
    return f"transcript.json{compression}" if role == "transcript" else STARBUCKS_ROLES[role]
