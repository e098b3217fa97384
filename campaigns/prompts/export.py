"""Encode rendered prompts as JSON Lines or CSV, a chunk at a time (constant memory)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from campaigns.prompts.engine import RenderedPrompt

FORMATS = ("jsonl", "csv")
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def encode_chunks(chunks: Iterable[list[RenderedPrompt]], fmt: str) -> Iterator[str]:
    """Yield the export as text pieces: a header first for CSV, then one piece per chunk."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(RenderedPrompt.FIELDS)
        yield buffer.getvalue()
        for chunk in chunks:
            buffer.seek(0)
            buffer.truncate()
            for prompt in chunk:
                row = prompt.as_dict()
                writer.writerow(["" if row[f] is None else row[f] for f in RenderedPrompt.FIELDS])
            yield buffer.getvalue()
        return
    for chunk in chunks:
        yield "".join(json.dumps(prompt.as_dict(), ensure_ascii=False) + "\n" for prompt in chunk)
