"""The set-based write: customers upserted, events inserted once, in the caller's transaction.

PostgreSQL: the customers in one `INSERT … FROM json_to_recordset(…) ON CONFLICT … RETURNING`,
sent in one round trip with the lookup of the dedup keys already stored; then a COPY of the
new events straight into the events table (through a staging table and ON CONFLICT DO NOTHING
only when a concurrent writer stored one of the keys in between). SQLite (the laptop default):
`executemany` with ON CONFLICT clauses. No ORM save per row anywhere.
"""

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec
import psycopg
from django.db import connection

from memory.ingest.rollups import batch_tallies, tallies_add
from memory.models import Customer, Event

_encode = msgspec.json.encode


class CustomerRecord(NamedTuple):
    """A customer as one request saw them: traits to merge and the span of their events."""

    external_id: str
    anonymous_id: str
    traits: dict[str, Any]
    first_seen_at: datetime | None
    last_seen_at: datetime | None


class EventRecord(NamedTuple):
    """An event ready to store; the customer is named by external id, resolved in SQL."""

    external_id: str
    anonymous_id: str
    name: str
    occurred_at: datetime
    properties_json: bytes
    message_id: int | None
    message_key: str
    dedup_key: str


def rows_store(
    *,
    workspace_id: int,
    customers: list[CustomerRecord],
    events: list[EventRecord],
    received_at: datetime,
    want_stored_keys: bool = False,
    seen: bool = True,
    known: "KnownCustomers | None" = None,
    look_up: bool = True,
) -> tuple[int, set[str] | None]:
    """Upsert the customers, insert the events that are new; return (inserted, stored keys).

    With `seen=False` (bulk imports) existing customers keep their first/last seen times;
    the importer widens them once at the end with `customers_seen_widen`. `known` carries
    the customers an import has already written from chunk to chunk (PostgreSQL). With
    `look_up=False` (PostgreSQL) the events are COPYed without looking up the keys already
    stored: cheaper when none is, and still right when one is (the COPY is undone and the
    ON CONFLICT fallback stores the rest).

    Customers are written in external_id order and events in dedup_key order, so concurrent
    writers take their locks in the same order and cannot deadlock each other. The events
    stored are added to the per-day tallies of the insight pages in the same transaction
    (memory/ingest/rollups.py, docs/decisions/0310).
    """
    customers = sorted(customers, key=lambda c: c.external_id)
    events = sorted(events, key=lambda e: e.dedup_key)
    if connection.vendor == "postgresql":
        stored = _store_postgresql(
            workspace_id, customers, events, received_at, seen, known, look_up
        )
    else:
        stored = _store_sqlite(workspace_id, customers, events, received_at, seen)
    if stored:
        _tallies_add(workspace_id, events, stored, received_at, seen)
    return len(stored), (stored if want_stored_keys else None)


def _tallies_add(workspace_id, events, stored, received_at, seen) -> None:
    """Count the events just stored into the per-day tallies (late and future-dated ones only
    for live ingestion, `seen`: a file import is a backfill, late by nature)."""
    records, previous = [], None
    for e in events:  # sorted by dedup key: a repeat within the batch follows its first
        if e.dedup_key in stored and e.dedup_key != previous:
            records.append(e)
        previous = e.dedup_key
    days, issues = batch_tallies(records, received_at, timing=seen)
    tallies_add(workspace_id=workspace_id, days=days, issues=issues)


CUSTOMER = Customer._meta.db_table
EVENT = Event._meta.db_table


def write_lock_take() -> None:
    """On SQLite, take the write lock first thing in the transaction.

    A deferred SQLite transaction that reads and then writes cannot wait for a concurrent
    writer (it would deadlock), so it fails at once with "database is locked". Writing first
    makes it wait its turn instead (up to the busy timeout). PostgreSQL needs nothing.
    """
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {CUSTOMER} SET id = id WHERE 0")


_PG_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS primer_staged_event (
    customer_id bigint, name text, occurred_at timestamptz, properties jsonb,
    message_id bigint, message_key text, dedup_key text
) ON COMMIT DELETE ROWS;
"""

# The batch's customers arrive as one JSON parameter (msgspec encodes it far faster than a COPY
# round trip into a staging table). Rows go in external_id order, so concurrent writers lock
# them in the same order. RETURNING names every customer inserted or changed, with its id;
# only the others (already stored, nothing to change) need looking up.
_PG_UPSERT_CUSTOMERS = f"""
INSERT INTO {CUSTOMER} (workspace_id, external_id, anonymous_id, traits, first_seen_at,
                        last_seen_at)
SELECT %s, s.x, s.a, s.t, s.f, s.l
FROM json_to_recordset(%s::json) AS s (x text, a text, t jsonb, f timestamptz, l timestamptz)
ORDER BY s.x
ON CONFLICT (workspace_id, external_id) DO UPDATE SET
    traits = {CUSTOMER}.traits || EXCLUDED.traits,
    anonymous_id = CASE WHEN {CUSTOMER}.anonymous_id = '' THEN EXCLUDED.anonymous_id
                        ELSE {CUSTOMER}.anonymous_id END
    -- SEEN_SET
WHERE EXCLUDED.traits <> '{{}}'::jsonb
   OR ({CUSTOMER}.anonymous_id = '' AND EXCLUDED.anonymous_id <> '')
   -- SEEN_WHERE
RETURNING external_id, id, anonymous_id <> ''
"""
_PG_SEEN_SET = f""",
    first_seen_at = LEAST({CUSTOMER}.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = GREATEST({CUSTOMER}.last_seen_at, EXCLUDED.last_seen_at)"""
_PG_SEEN_WHERE = f"""
   OR {CUSTOMER}.first_seen_at IS DISTINCT FROM
      LEAST({CUSTOMER}.first_seen_at, EXCLUDED.first_seen_at)
   OR {CUSTOMER}.last_seen_at IS DISTINCT FROM
      GREATEST({CUSTOMER}.last_seen_at, EXCLUDED.last_seen_at)"""
_PG_UPSERT_CUSTOMERS_SEEN = _PG_UPSERT_CUSTOMERS.replace("-- SEEN_SET", _PG_SEEN_SET).replace(
    "-- SEEN_WHERE", _PG_SEEN_WHERE
)
_PG_UPSERT_CUSTOMERS_UNSEEN = _PG_UPSERT_CUSTOMERS

# One index probe per id or key (LATERAL), whatever the statistics say: a workspace created
# after the last ANALYZE looks empty to the planner, which then scanned all its rows per batch
# (seconds a batch once it held 30k events) instead of probing the unique index.
_PG_CUSTOMER_IDS = f"""
SELECT c.external_id, c.id, c.anonymous_id <> ''
FROM (SELECT %s::bigint AS workspace_id) w
CROSS JOIN json_array_elements_text(%s::json) AS wanted(external_id)
CROSS JOIN LATERAL (
    SELECT external_id, id, anonymous_id FROM {CUSTOMER}
    WHERE workspace_id = w.workspace_id AND external_id = wanted.external_id
    LIMIT 1  -- unique anyway; keeps the planner from flattening the probe into a join
) c
"""
_PG_STORED_KEYS = f"""
SELECT e.dedup_key
FROM (SELECT %s::bigint AS workspace_id) w
CROSS JOIN json_array_elements_text(%s::json) AS wanted(dedup_key)
CROSS JOIN LATERAL (
    SELECT dedup_key FROM {EVENT}
    WHERE workspace_id = w.workspace_id AND dedup_key = wanted.dedup_key
    LIMIT 1
) e
"""

_EVENT_COLUMNS = "customer_id, name, occurred_at, properties, message_id, message_key, dedup_key"
_PG_COPY_EVENTS = f"COPY {EVENT} (workspace_id, received_at, {_EVENT_COLUMNS}) FROM STDIN"
_PG_INSERT_STAGED_EVENTS = f"""
INSERT INTO {EVENT} (workspace_id, received_at, {_EVENT_COLUMNS})
SELECT %s, %s, {_EVENT_COLUMNS} FROM primer_staged_event ORDER BY dedup_key
ON CONFLICT (workspace_id, dedup_key) DO NOTHING
RETURNING dedup_key
"""


class KnownCustomers:
    """Customers one import has already written: external id → (id, has an anonymous id).

    A bulk import meets the same customers chunk after chunk; once a customer is stored, a
    later chunk needs to write them again only to merge traits or fill an empty anonymous id.
    """

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.with_anonymous: set[str] = set()

    def needs_write(self, customer: "CustomerRecord") -> bool:
        return (
            customer.external_id not in self.ids
            or bool(customer.traits)
            or bool(customer.anonymous_id and customer.external_id not in self.with_anonymous)
        )


def _json_text(values: list[str]) -> str:
    # A list passed as one JSON document: msgspec encodes it far faster than psycopg dumps
    # a Python list as a text[] array, element by element.
    return _encode(values).decode()


def _customers_json(customers: list["CustomerRecord"]) -> str:
    return _encode(
        [
            {
                "x": c.external_id,
                "a": c.anonymous_id,
                "t": c.traits,
                "f": c.first_seen_at,
                "l": c.last_seen_at,
            }
            for c in customers
        ]
    ).decode()


def _store_postgresql(workspace_id, customers, events, received_at, seen, known, look_up):
    """Upsert the customers and look up the keys already stored (one round trip), then COPY
    the new events straight into the events table. A COPY conflicts only when a concurrent
    writer stores the same key in between: then it is undone (a savepoint) and the events go
    in through a staging table with ON CONFLICT DO NOTHING.
    """
    known = known if known is not None else KnownCustomers()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, for COPY and the pipeline
        session = raw.connection
        to_write = [c for c in customers if known.needs_write(c)]
        upserted, looked_up = session.cursor(), session.cursor()
        # The upsert and the lookup do not depend on each other: send both, wait once.
        with session.pipeline():
            if to_write:
                upsert = _PG_UPSERT_CUSTOMERS_SEEN if seen else _PG_UPSERT_CUSTOMERS_UNSEEN
                upserted.execute(upsert, [workspace_id, _customers_json(to_write)])
            if events and look_up:
                keys = _json_text([e.dedup_key for e in events])
                looked_up.execute(_PG_STORED_KEYS, [workspace_id, keys])
        written: set[str] = set()
        if to_write:
            for external_id, customer_id, with_anonymous in upserted:
                written.add(external_id)
                known.ids[external_id] = customer_id
                if with_anonymous:
                    known.with_anonymous.add(external_id)
        unresolved = [c.external_id for c in to_write if c.external_id not in written]
        unresolved += [e.external_id for e in events if e.external_id not in known.ids]
        if unresolved:
            raw.execute(_PG_CUSTOMER_IDS, [workspace_id, _json_text(sorted(set(unresolved)))])
            for external_id, customer_id, with_anonymous in raw:
                known.ids[external_id] = customer_id
                if with_anonymous:
                    known.with_anonymous.add(external_id)
        if not events:
            return set()
        stored_before = {key for (key,) in looked_up} if look_up else set()
        fresh: list[EventRecord] = []
        for e in events:  # sorted by dedup key: a repeat within the batch follows its first
            if e.dedup_key not in stored_before and not (
                fresh and fresh[-1].dedup_key == e.dedup_key
            ):
                fresh.append(e)
        if not fresh:
            return set()
        rows = [
            (
                known.ids[e.external_id],
                e.name,
                e.occurred_at.isoformat(),
                e.properties_json.decode(),
                e.message_id,
                e.message_key,
                e.dedup_key,
            )
            for e in fresh
        ]
        received = received_at.isoformat()
        cursor.execute("SAVEPOINT primer_events_copy")
        try:
            with raw.copy(_PG_COPY_EVENTS) as copy:
                for row in rows:
                    copy.write_row((workspace_id, received, *row))
        except psycopg.errors.UniqueViolation:
            # A concurrent writer stored some of these keys after the lookup above.
            cursor.execute("ROLLBACK TO SAVEPOINT primer_events_copy")
            cursor.execute(_PG_STAGING)
            with raw.copy(f"COPY primer_staged_event ({_EVENT_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            raw.execute(_PG_INSERT_STAGED_EVENTS, [workspace_id, received_at])
            stored = {key for (key,) in raw}
            # Commit empties the staging table (ON COMMIT DELETE ROWS); inside an outer
            # transaction no commit comes before the next use, so empty it now.
            cursor.execute("DELETE FROM primer_staged_event")
        else:
            stored = {e.dedup_key for e in fresh}
        cursor.execute("RELEASE SAVEPOINT primer_events_copy")
    return stored


_SQLITE_UPSERT_CUSTOMERS = f"""
INSERT INTO {CUSTOMER} (workspace_id, external_id, anonymous_id, traits, first_seen_at,
                        last_seen_at)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (workspace_id, external_id) DO UPDATE SET
    traits = CASE WHEN excluded.traits = '{{}}' THEN {CUSTOMER}.traits ELSE excluded.traits END,
    anonymous_id = CASE WHEN {CUSTOMER}.anonymous_id = '' THEN excluded.anonymous_id
                        ELSE {CUSTOMER}.anonymous_id END
    -- SEEN_SET
"""
_SQLITE_UPSERT_CUSTOMERS_SEEN = _SQLITE_UPSERT_CUSTOMERS.replace(
    "-- SEEN_SET",
    f""",
    first_seen_at = min(coalesce({CUSTOMER}.first_seen_at, excluded.first_seen_at),
                        coalesce(excluded.first_seen_at, {CUSTOMER}.first_seen_at)),
    last_seen_at = max(coalesce({CUSTOMER}.last_seen_at, excluded.last_seen_at),
                       coalesce(excluded.last_seen_at, {CUSTOMER}.last_seen_at))""",
)
_SQLITE_UPSERT_CUSTOMERS_UNSEEN = _SQLITE_UPSERT_CUSTOMERS.replace(
    "-- SEEN_SET",
    f"""
    WHERE excluded.traits <> '{{}}'
       OR ({CUSTOMER}.anonymous_id = '' AND excluded.anonymous_id <> '')""",
)

_SQLITE_INSERT_EVENTS = f"""
INSERT INTO {EVENT} (workspace_id, customer_id, name, occurred_at, received_at, properties,
                     message_id, message_key, dedup_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (workspace_id, dedup_key) DO NOTHING
"""

_SQLITE_CHUNK = 500  # bound parameters per IN (...) list


def _chunks(items: list, size: int = _SQLITE_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sqlite_time(value: datetime | None) -> str | None:
    """Format a UTC time as Django stores it in SQLite (what adapt_datetimefield_value does,
    without its per-call settings lookups)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ")


def _store_sqlite(workspace_id, customers, events, received_at, seen):
    to_db = _sqlite_time
    with connection.cursor() as cursor:
        # The default 2 MB page cache thrashes on the events table's eight indexes.
        cursor.execute("PRAGMA cache_size = -65536")
        # SQLite has no jsonb `||`: merge traits shallowly here, as PostgreSQL does there.
        with_traits = [c.external_id for c in customers if c.traits]
        current: dict[str, dict] = {}
        for chunk in _chunks(with_traits):
            cursor.execute(
                f"SELECT external_id, traits FROM {CUSTOMER} WHERE workspace_id = %s"
                f" AND external_id IN ({', '.join(['%s'] * len(chunk))})",
                [workspace_id, *chunk],
            )
            current.update((external_id, json.loads(traits)) for external_id, traits in cursor)
        cursor.executemany(
            _SQLITE_UPSERT_CUSTOMERS_SEEN if seen else _SQLITE_UPSERT_CUSTOMERS_UNSEEN,
            [
                (
                    workspace_id,
                    c.external_id,
                    c.anonymous_id,
                    json.dumps({**current.get(c.external_id, {}), **c.traits}, ensure_ascii=False)
                    if c.traits
                    else "{}",
                    to_db(c.first_seen_at),
                    to_db(c.last_seen_at),
                )
                for c in customers
            ],
        )
        if not events:
            return set()
        ids: dict[str, int] = {}
        external_ids = sorted({e.external_id for e in events})
        for chunk in _chunks(external_ids):
            cursor.execute(
                f"SELECT external_id, id FROM {CUSTOMER} WHERE workspace_id = %s"
                f" AND external_id IN ({', '.join(['%s'] * len(chunk))})",
                [workspace_id, *chunk],
            )
            ids.update(cursor.fetchall())
        # The keys already stored, so the tallies count only the events this batch adds.
        existing: set[str] = set()
        keys = sorted({e.dedup_key for e in events})
        for chunk in _chunks(keys):
            cursor.execute(
                f"SELECT dedup_key FROM {EVENT} WHERE workspace_id = %s"
                f" AND dedup_key IN ({', '.join(['%s'] * len(chunk))})",
                [workspace_id, *chunk],
            )
            existing.update(key for (key,) in cursor)
        received = to_db(received_at)
        cursor.executemany(
            _SQLITE_INSERT_EVENTS,
            [
                (
                    workspace_id,
                    ids[e.external_id],
                    e.name,
                    to_db(e.occurred_at),
                    received,
                    e.properties_json.decode(),
                    e.message_id,
                    e.message_key,
                    e.dedup_key,
                )
                for e in events
            ],
        )
    return {e.dedup_key for e in events} - existing


def customers_seen_widen(*, workspace_id: int, spans: dict[str, list[datetime]]) -> None:
    """Widen customers' first/last seen times to cover {external id: [first, last]}, set-based.

    Used once after a bulk import with the span of every event it read, stored before or not,
    so an import that stopped half-way and was run again still leaves the times right.
    """
    if not spans:
        return
    external_ids = sorted(spans)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One JSON parameter: msgspec encodes it far faster than psycopg dumps three lists.
            spans_json = _encode(
                [{"x": x, "f": spans[x][0], "l": spans[x][1]} for x in external_ids]
            ).decode()
            cursor.cursor.execute(
                f"""
                UPDATE {CUSTOMER} c SET
                    first_seen_at = LEAST(c.first_seen_at, s.f),
                    last_seen_at = GREATEST(c.last_seen_at, s.l)
                FROM json_to_recordset(%s::json) AS s (x text, f timestamptz, l timestamptz)
                WHERE c.workspace_id = %s AND c.external_id = s.x
                  AND (c.first_seen_at IS DISTINCT FROM LEAST(c.first_seen_at, s.f)
                       OR c.last_seen_at IS DISTINCT FROM GREATEST(c.last_seen_at, s.l))
                """,
                [spans_json, workspace_id],
            )
            return
        to_db = _sqlite_time
        firsts = [spans[x][0] for x in external_ids]
        lasts = [spans[x][1] for x in external_ids]
        cursor.executemany(
            f"""
            UPDATE {CUSTOMER} SET
                first_seen_at = min(coalesce(first_seen_at, %s), %s),
                last_seen_at = max(coalesce(last_seen_at, %s), %s)
            WHERE workspace_id = %s AND external_id = %s
            """,
            [
                (to_db(f), to_db(f), to_db(last), to_db(last), workspace_id, x)
                for x, f, last in zip(external_ids, firsts, lasts, strict=True)
            ],
        )
