"""Writes for what Primer learns: one use case per function."""

import gc
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from campaigns.models import Workspace
from memory.importers import starbucks
from memory.importers.lines import SourceLine
from memory.importers.summary import ImportSummary
from memory.ingest.dedup import Occurrences
from memory.ingest.label_caps import rows_within_label_caps
from memory.ingest.messages import message_ids_resolve
from memory.ingest.outbox import recompute_request
from memory.ingest.rollups import rejections_of, tallies_add
from memory.ingest.segment import EventRow, Inherited, Rejection, parse_events
from memory.ingest.store import (
    CustomerRecord,
    EventRecord,
    KnownCustomers,
    customers_seen_widen,
    rows_store,
    write_lock_take,
)
from memory.ingest.suppression import rows_not_suppressed, suppression_lock_shared
from memory.ingest.timestamps import TimestampPolicy
from memory.models import Customer

STORED, DUPLICATE, IDENTIFIED, REJECTED = "stored", "duplicate", "identified", "rejected"


@dataclass
class IngestResult:
    """What became of each event of one call."""

    received: int
    stored: int = 0
    duplicates: int = 0
    identified: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    statuses: list[str] | None = None
    message_keys_registered: set[str] = field(default_factory=set)
    unknown_message_keys: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.received - len(self.rejections)

    @property
    def messages_registered(self) -> int:
        return len(self.message_keys_registered)


def events_ingest(
    *,
    workspace: Workspace,
    payloads: list,
    received_at: datetime | None = None,
    inherited: Inherited | None = None,
    policy: TimestampPolicy | None = None,
    occurrences: Occurrences | None = None,
    per_index: bool = False,
) -> IngestResult:
    """Validate Segment-style events and store the valid ones once, in one transaction.

    `payloads` are JSON bytes, dicts or SegmentEvents. Customers are created or updated,
    identify merges traits, send events resolve (or register) their messages, and a retried
    event (same dedup key) is answered like the first but stored once. New events schedule a
    debounced recompute of the workspace, queued after commit.
    """
    received_at = received_at or timezone.now()
    rows, rejections = parse_events(
        payloads,
        received_at=received_at,
        policy=policy or TimestampPolicy.from_settings(),
        send_event=workspace.send_event,
        inherited=inherited or Inherited(),
        occurrences=occurrences,
    )
    rows, rejections = rows_within_label_caps(workspace=workspace, rows=rows, rejections=rejections)
    return _rows_ingest(
        workspace=workspace,
        count=len(payloads),
        rows=rows,
        rejections=rejections,
        received_at=received_at,
        per_index=per_index,
    )


def _rows_ingest(
    *,
    workspace: Workspace,
    count: int,
    rows: list[EventRow],
    rejections: list[Rejection],
    received_at: datetime,
    per_index: bool = False,
    seen: bool = True,
    known: KnownCustomers | None = None,
    batch: "Batch | None" = None,
    look_up: bool = True,
) -> IngestResult:
    """Store validated rows: messages, customers and events in one transaction.

    `batch` is the rows already folded by `_batch_of` (a bulk import folds the next chunk
    while this one is written).
    """
    result = IngestResult(received=count, rejections=rejections)
    refused = rejections_of(((r.field, r.reason) for r in rejections), received_at.date())
    if not rows:
        with transaction.atomic():
            tallies_add(workspace_id=workspace.pk, issues=refused)
        if per_index:
            result.statuses = [REJECTED] * count
        return result

    message_ids: dict[str, int] = {}
    stored_keys: set[str] | None = None
    inserted = 0
    with transaction.atomic():
        write_lock_take()
        suppression_lock_shared(workspace.pk)
        rows, suppressed = rows_not_suppressed(workspace_id=workspace.pk, rows=rows)
        if suppressed:
            batch = None  # folded before the check: fold what is left
            result.rejections = sorted([*rejections, *suppressed], key=attrgetter("index"))
            refused += rejections_of(((r.field, r.reason) for r in suppressed), received_at.date())
        tallies_add(workspace_id=workspace.pk, issues=refused)
        if rows:
            inserted, stored_keys, message_ids = _rows_write(
                workspace=workspace,
                rows=rows,
                result=result,
                received_at=received_at,
                per_index=per_index,
                seen=seen,
                known=known,
                batch=batch,
                look_up=look_up,
            )
        events_count = sum(1 for row in rows if row.name is not None)

    result.stored = inserted
    result.identified = len(rows) - events_count
    result.duplicates = events_count - inserted
    result.unknown_message_keys = sorted(
        {row.message_key for row in rows if row.message_key and row.message_key not in message_ids}
    )
    if per_index:
        result.statuses = _statuses(count, rows, result.rejections, stored_keys or set())
    return result


def _rows_write(
    *,
    workspace: Workspace,
    rows: list[EventRow],
    result: IngestResult,
    received_at: datetime,
    per_index: bool,
    seen: bool,
    known: KnownCustomers | None,
    batch: "Batch | None",
    look_up: bool,
) -> tuple[int, set[str] | None, dict[str, int]]:
    """Resolve the rows' messages and store their customers and events; return (inserted,
    stored keys, message ids by key). Runs inside _rows_ingest's transaction."""
    message_ids, result.message_keys_registered = message_ids_resolve(
        workspace=workspace, rows=rows
    )
    events, customers = batch or _batch_of(rows)
    if message_ids:
        events = [
            e._replace(message_id=message_ids[e.message_key]) if e.message_key in message_ids else e
            for e in events
        ]
    inserted, stored_keys = rows_store(
        workspace_id=workspace.pk,
        customers=customers,
        events=events,
        received_at=received_at,
        want_stored_keys=per_index,
        seen=seen,
        known=known,
        look_up=look_up,
    )
    if inserted:
        # Debounced and queued after commit (or kept in the outbox); never computed inline.
        recompute_request(workspace_id=workspace.pk)
    return inserted, stored_keys, message_ids


class Batch(NamedTuple):
    """Rows folded for the store: events by dedup key, customers by external id."""

    events: list[EventRecord]
    customers: list[CustomerRecord]


def _batch_of(rows: list[EventRow]) -> Batch:
    """Fold rows into records to store; message ids are filled in once resolved."""
    events = [
        EventRecord(
            external_id=row.external_id,
            anonymous_id=row.anonymous_id,
            name=row.name,
            occurred_at=row.occurred_at,
            properties_json=row.properties_json,
            message_id=None,
            message_key=row.message_key,
            dedup_key=row.dedup_key,
        )
        for row in rows
        if row.name is not None
    ]
    events.sort(key=attrgetter("dedup_key"))
    customers = _customers_of(rows)
    customers.sort(key=attrgetter("external_id"))
    return Batch(events, customers)


def _customers_of(rows: list[EventRow]) -> list[CustomerRecord]:
    """Fold a request's rows into one record per customer: merged traits, span of events."""
    folded: dict[str, list[Any]] = {}
    for row in rows:
        entry = folded.get(row.external_id)
        if entry is None:
            entry = folded[row.external_id] = [row.anonymous_id, {}, None, None]
        elif not entry[0]:
            entry[0] = row.anonymous_id
        if row.traits:
            entry[1].update(row.traits)
        if row.name is not None:
            if entry[2] is None or row.occurred_at < entry[2]:
                entry[2] = row.occurred_at
            if entry[3] is None or row.occurred_at > entry[3]:
                entry[3] = row.occurred_at
    return [
        CustomerRecord(external_id, anonymous_id, traits, first, last)
        for external_id, (anonymous_id, traits, first, last) in folded.items()
    ]


def _spans_widen(spans: dict[str, list[datetime]], customers: list[CustomerRecord]) -> None:
    """Widen each customer's [first, last] event time in `spans` by this batch's."""
    for c in customers:
        if c.first_seen_at is None:
            continue
        span = spans.get(c.external_id)
        if span is None:
            spans[c.external_id] = [c.first_seen_at, c.last_seen_at]
        else:
            if c.first_seen_at < span[0]:
                span[0] = c.first_seen_at
            if c.last_seen_at > span[1]:
                span[1] = c.last_seen_at


def _statuses(
    count: int, rows: list[EventRow], rejections: list[Rejection], stored_keys: set[str]
) -> list[str]:
    statuses = [REJECTED] * count
    claimed: set[str] = set()
    for row in rows:
        if row.name is None:
            statuses[row.index] = IDENTIFIED
        elif row.dedup_key in stored_keys and row.dedup_key not in claimed:
            claimed.add(row.dedup_key)
            statuses[row.index] = STORED
        else:
            statuses[row.index] = DUPLICATE
    return statuses


# --- File import -------------------------------------------------------------------------


def events_import(
    *,
    workspace: Workspace,
    lines: Iterable[SourceLine | None],
    source: str,
    received_at: datetime | None = None,
    policy: TimestampPolicy | None = None,
    chunk_size: int = 5_000,
    summary: ImportSummary | None = None,
    on_chunk: Callable[[ImportSummary, int], None] | None = None,
    writers: int = 2,
) -> ImportSummary:
    """Import events from a file's lines in chunks, each its own transaction; idempotent.

    A None line is a blank one (counted, skipped). A line that fails is recorded with its
    number and reason and the rest goes on. Identical lines without a messageId are numbered
    (see Occurrences), so a file imported twice adds nothing the second time.

    On PostgreSQL outside a transaction, the calling thread validates the next chunks while
    `writers` threads, each on a connection of its own, write earlier ones (Python and
    PostgreSQL busy at once). Inside a transaction everything stays on its connection; SQLite
    has one writer and gains nothing from more threads.
    """
    summary = summary or ImportSummary()
    rejected_before = len(summary.rejected)
    received_at = received_at or timezone.now()
    policy = policy or TimestampPolicy.from_settings()
    occurrences = Occurrences()
    spans: dict[str, list[datetime]] = {}
    # Each writer keeps the customers it has written: an id learnt inside one connection's
    # transaction must not reach another connection's events before that transaction commits.
    per_writer = threading.local()
    tallying = threading.Lock()
    # A new file's keys are all new: COPY without looking them up first, until a chunk meets
    # one already stored (a file imported again); from then on, look up first.
    look_up = False
    # Lines no parser could read: tallied with the import's other rejections at the end.
    unreadable: list[tuple[str, str]] = []

    def store(chunk: list[SourceLine], rows, rejections, batch) -> None:
        nonlocal look_up
        for attempt in range(_DEADLOCK_RETRIES + 1):
            if attempt or not hasattr(per_writer, "known"):
                # After a rollback, ids learnt in that transaction may not exist: forget them.
                per_writer.known = KnownCustomers()
            try:
                # Seen times are refreshed once at the end, not moved forward chunk by chunk.
                result = _rows_ingest(
                    workspace=workspace,
                    count=len(chunk),
                    rows=rows,
                    rejections=rejections,
                    received_at=received_at,
                    seen=False,
                    known=per_writer.known,
                    batch=batch,
                    look_up=look_up,
                )
                break
            except (OperationalError, psycopg.errors.DeadlockDetected) as error:
                # Two writers can deadlock when their chunks share customers and keys (a file
                # that repeats itself); PostgreSQL undoes one, which is written again. (The
                # COPY raises psycopg's own error; Django's cursors wrap it.)
                cause = error if isinstance(error, psycopg.Error) else error.__cause__
                deadlock = isinstance(cause, psycopg.errors.DeadlockDetected)
                if not deadlock or attempt == _DEADLOCK_RETRIES:
                    raise
        with tallying:
            look_up = look_up or result.duplicates > 0
            summary.stored += result.stored
            summary.duplicates += result.duplicates
            summary.identified += result.identified
            summary.message_keys_registered |= result.message_keys_registered
            summary.unknown_message_keys.update(result.unknown_message_keys)
            summary.rejected.extend(
                (source, chunk[r.index].line, r.field, r.reason) for r in result.rejections
            )
            if on_chunk is not None:
                on_chunk(summary, len(chunk))

    def chunks() -> Iterable[list[SourceLine]]:
        chunk: list[SourceLine] = []
        for item in lines:
            summary.lines += 1
            if item is None:
                summary.blank += 1
            elif item.error:
                with tallying:
                    summary.rejected.append((source, item.line, item.field, item.error))
                    unreadable.append((item.field, item.error))
            else:
                chunk.append(item)
                if len(chunk) >= chunk_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def parsed(chunk: list[SourceLine]):
        rows, rejections = parse_events(
            [item.payload for item in chunk],
            received_at=received_at,
            policy=policy,
            send_event=workspace.send_event,
            occurrences=occurrences,
        )
        rows, rejections = rows_within_label_caps(
            workspace=workspace, rows=rows, rejections=rejections
        )
        batch = _batch_of(rows)
        _spans_widen(spans, batch.customers)
        return rows, rejections, batch

    if connection.in_atomic_block or connection.vendor != "postgresql" or writers < 2:
        with _collector_paused():
            for chunk in chunks():
                store(chunk, *parsed(chunk))
    else:
        with _collector_paused(), ThreadPoolExecutor(max_workers=writers) as pool:
            writing: deque = deque()
            try:
                for chunk in chunks():
                    # Python folds the next chunk while PostgreSQL writes the ones before.
                    ready = parsed(chunk)
                    if len(writing) >= writers:
                        writing.popleft().result()
                    writing.append(pool.submit(store, chunk, *ready))
                while writing:
                    writing.popleft().result()
            finally:
                for pending in writing:
                    pending.cancel()
                # Every writer thread closes its own connection (the barrier holds each one).
                barrier = threading.Barrier(writers)
                closing = [pool.submit(_connections_close, barrier) for _ in range(writers)]
                for closed in closing:
                    closed.result()

    # Writers finish chunks out of order: report the rejected lines in file order.
    summary.rejected[rejected_before:] = sorted(
        summary.rejected[rejected_before:], key=lambda rejected: rejected[1]
    )
    with transaction.atomic():
        customers_seen_widen(workspace_id=workspace.pk, spans=spans)
        tallies_add(workspace_id=workspace.pk, issues=rejections_of(unreadable, received_at.date()))
    summary.repeats += occurrences.repeats
    summary.customers = Customer.objects.for_workspace(workspace).count()
    return summary


_DEADLOCK_RETRIES = 3


def _connections_close(barrier: threading.Barrier) -> None:
    barrier.wait(timeout=60)
    connections.close_all()


@contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector, then restore it as it was.

    An import allocates millions of short-lived objects (freed by reference counting), which
    would set off full collections that walk every object of the process again and again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def starbucks_import(
    *,
    workspace: Workspace,
    directory: Path,
    received_at: datetime | None = None,
    on_chunk: Callable[[ImportSummary, int], None] | None = None,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Import the Starbucks rewards data: offers as messages, profiles as traits, the transcript."""
    received_at = received_at or timezone.now()
    summary = summary or ImportSummary()
    starbucks.starbucks_catalogue_load(workspace=workspace, portfolio=directory / "portfolio.json")
    events_import(
        workspace=workspace,
        lines=starbucks.profile_lines(directory / "profile.json"),
        source="profile.json",
        received_at=received_at,
        summary=summary,
        on_chunk=on_chunk,
    )
    transcript = starbucks.transcript_path(directory)
    events_import(
        workspace=workspace,
        lines=starbucks.transcript_lines(transcript, workspace=workspace),
        source=transcript.name,
        received_at=received_at,
        summary=summary,
        on_chunk=on_chunk,
    )
    return summary
