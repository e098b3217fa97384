"""Encode rendered prompts as JSON Lines or CSV, a chunk at a time (constant memory)."""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import msgspec
from django.db import connections

from campaigns.models import Workspace
from campaigns.prompts.context import MemoryReader
from campaigns.prompts.engine import RenderedPrompt
from campaigns.prompts.selectors import (
    CHUNK_SIZE,
    PromptChoice,
    chunk_bounds,
    prompt_chunks,
    prompts_in_range,
)
from memory.exports import FORMATS, spreadsheet_safe  # one definition for both exports

_JSON = msgspec.json.Encoder()


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
                writer.writerow([_csv_cell(row[f]) for f in RenderedPrompt.FIELDS])
            yield buffer.getvalue()
        return
    for chunk in chunks:
        # One compact JSON object per line (msgspec: the same values as json, several times faster).
        yield _JSON.encode_lines([prompt.as_dict() for prompt in chunk]).decode()


def _csv_cell(value) -> str | int:
    if value is None:
        return ""
    return spreadsheet_safe(value) if isinstance(value, str) else value


def _encode_chunk(chunk: list[RenderedPrompt], fmt: str) -> str:
    """Encode one chunk without the CSV header."""
    pieces = list(encode_chunks([chunk], fmt))
    return "".join(pieces[1:] if fmt == "csv" else pieces)


_worker: dict = {}


def _worker_start(workspace_id: int, choice: PromptChoice) -> None:
    workspace = Workspace.objects.get(pk=workspace_id)
    reader = MemoryReader(workspace, guidance=choice.guidance, campaign=choice.campaign_context())
    _worker.update(reader=reader, choice=choice)


def _worker_render(bounds: tuple[int, int], fmt: str) -> tuple[int, str]:
    chunk = prompts_in_range(reader=_worker["reader"], choice=_worker["choice"], bounds=bounds)
    return len(chunk), _encode_chunk(chunk, fmt)


def export_pieces(
    *,
    workspace: Workspace,
    choice: PromptChoice,
    fmt: str,
    processes: int = 1,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[tuple[int, str]]:
    """Yield (prompts, text) pieces of the export in customer order, a chunk at a time.

    With several processes, chunks of customers (keyset bounds) are rendered by forked workers,
    each with its own database connection, at most two chunks in flight per worker, so memory
    stays flat; the pieces still come out in order.
    """
    if fmt == "csv":
        yield 0, next(iter(encode_chunks([], "csv")))
    if processes <= 1 or connections["default"].in_atomic_block:
        # Inside a transaction the workers could not see its rows: render in this process.
        for chunk in prompt_chunks(workspace=workspace, choice=choice, chunk_size=chunk_size):
            yield len(chunk), _encode_chunk(chunk, fmt)
        return
    # Chunk bounds are read first (a few hundred pairs): once the workers are forked the parent
    # keeps off the database, whose sessions must not be shared; each worker opens its own.
    bounds = list(chunk_bounds(workspace=workspace, chunk_size=chunk_size))
    connections.close_all()
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=get_context("fork"),
        initializer=_worker_start,
        initargs=(workspace.pk, choice),
    ) as pool:
        in_flight: deque = deque()
        for pair in bounds:
            in_flight.append(pool.submit(_worker_render, pair, fmt))
            if len(in_flight) >= 2 * processes:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
