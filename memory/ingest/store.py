"""The set-based write: customers upserted, events inserted once, in the caller's transaction.

PostgreSQL: COPY into TEMP staging tables, then one `INSERT … SELECT … ON CONFLICT` for the
customers and one for the events. SQLite (the laptop default): `executemany` with the same
ON CONFLICT clauses. No ORM save per row anywhere.
"""

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec
from django.db import connection, transaction

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
) -> tuple[int, set[str] | None]:
    """Upsert the customers, insert the events that are new; return (inserted, stored keys).

    With `seen=False` (bulk imports) existing customers keep their first/last seen times;
    the importer refreshes them once at the end with `customers_seen_refresh`.

    Customers are written in external_id order and events in dedup_key order, so concurrent
    writers take their locks in the same order and cannot deadlock each other.
    """
    customers = sorted(customers, key=lambda c: c.external_id)
    events = sorted(events, key=lambda e: e.dedup_key)
    if connection.vendor == "postgresql":
        return _store_postgresql(
            workspace_id, customers, events, received_at, want_stored_keys, seen
        )
    return _store_sqlite(workspace_id, customers, events, received_at, want_stored_keys, seen)


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
CREATE TEMP TABLE IF NOT EXISTS primer_stage_event (
    external_id text, anonymous_id text, name text, occurred_at timestamptz,
    properties jsonb, message_id bigint, message_key text, dedup_key text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS primer_stage_customer (
    external_id text, anonymous_id text, traits jsonb
) ON COMMIT DELETE ROWS;
"""

# Customers come from the staged events (one row each, with the span of their events), joined
# to the few staged only for their traits (identify) or their anonymous id.
_PG_UPSERT_CUSTOMERS = f"""
INSERT INTO {CUSTOMER} (workspace_id, external_id, anonymous_id, traits, first_seen_at,
                        last_seen_at)
SELECT %s, COALESCE(e.external_id, d.external_id),
       COALESCE(NULLIF(d.anonymous_id, ''), e.anonymous_id, ''),
       COALESCE(d.traits, '{{}}'::jsonb), e.first_seen_at, e.last_seen_at
FROM (
    SELECT external_id, max(anonymous_id) AS anonymous_id,
           min(occurred_at) AS first_seen_at, max(occurred_at) AS last_seen_at
    FROM primer_stage_event GROUP BY external_id
) e
FULL JOIN primer_stage_customer d ON d.external_id = e.external_id
ORDER BY 2
ON CONFLICT (workspace_id, external_id) DO UPDATE SET
    traits = {CUSTOMER}.traits || EXCLUDED.traits,
    anonymous_id = CASE WHEN {CUSTOMER}.anonymous_id = '' THEN EXCLUDED.anonymous_id
                        ELSE {CUSTOMER}.anonymous_id END
    -- SEEN_SET
WHERE EXCLUDED.traits <> '{{}}'::jsonb
   OR ({CUSTOMER}.anonymous_id = '' AND EXCLUDED.anonymous_id <> '')
   -- SEEN_WHERE
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

_PG_INSERT_EVENTS = f"""
INSERT INTO {EVENT} (workspace_id, customer_id, name, occurred_at, received_at, properties,
                     message_id, message_key, dedup_key)
SELECT %s, c.id, s.name, s.occurred_at, %s, s.properties, s.message_id, s.message_key,
       s.dedup_key
FROM primer_stage_event s
JOIN {CUSTOMER} c ON c.workspace_id = %s AND c.external_id = s.external_id
ORDER BY s.dedup_key
ON CONFLICT (workspace_id, dedup_key) DO NOTHING
"""


def _store_postgresql(workspace_id, customers, events, received_at, want_stored_keys, seen):
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        # Temp tables live as long as the database session: create them once per connection,
        # and count them as made only once committed (a rollback takes them away again).
        session = raw.connection
        if getattr(connection, "_primer_staging_for", None) is not session:
            cursor.execute(_PG_STAGING)
            transaction.on_commit(lambda: setattr(connection, "_primer_staging_for", session))
        with raw.copy(
            "COPY primer_stage_event (external_id, anonymous_id, name, occurred_at, properties,"
            " message_id, message_key, dedup_key) FROM STDIN"
        ) as copy:
            for e in events:
                copy.write_row(
                    (
                        e.external_id,
                        e.anonymous_id,
                        e.name,
                        e.occurred_at,
                        e.properties_json.decode(),
                        e.message_id,
                        e.message_key,
                        e.dedup_key,
                    )
                )
        # Only customers the events alone do not describe: traits, or no event in this batch.
        described = [c for c in customers if c.traits or c.first_seen_at is None]
        if described:
            with raw.copy(
                "COPY primer_stage_customer (external_id, anonymous_id, traits) FROM STDIN"
            ) as copy:
                for c in described:
                    copy.write_row((c.external_id, c.anonymous_id, _encode(c.traits).decode()))
        upsert = _PG_UPSERT_CUSTOMERS_SEEN if seen else _PG_UPSERT_CUSTOMERS_UNSEEN
        cursor.execute(upsert, [workspace_id])
        inserted, stored = 0, None
        if events:
            sql = _PG_INSERT_EVENTS + (" RETURNING dedup_key" if want_stored_keys else "")
            cursor.execute(sql, [workspace_id, received_at, workspace_id])
            inserted = cursor.rowcount
            if want_stored_keys:
                stored = {key for (key,) in cursor.fetchall()}
        # Commit empties the staging tables (ON COMMIT DELETE ROWS); inside an outer
        # transaction no commit comes before the next use, so empty them now.
        if len(connection.atomic_blocks) > 1:
            cursor.execute("DELETE FROM primer_stage_event; DELETE FROM primer_stage_customer")
    return inserted, stored


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


def _store_sqlite(workspace_id, customers, events, received_at, want_stored_keys, seen):
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
            return 0, None
        ids: dict[str, int] = {}
        external_ids = sorted({e.external_id for e in events})
        for chunk in _chunks(external_ids):
            cursor.execute(
                f"SELECT external_id, id FROM {CUSTOMER} WHERE workspace_id = %s"
                f" AND external_id IN ({', '.join(['%s'] * len(chunk))})",
                [workspace_id, *chunk],
            )
            ids.update(cursor.fetchall())
        existing: set[str] = set()
        if want_stored_keys:
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
        inserted = cursor.rowcount
    stored = {e.dedup_key for e in events} - existing if want_stored_keys else None
    return inserted, stored


def customers_seen_refresh(*, workspace_id: int, external_ids: list[str]) -> None:
    """Set these customers' first/last seen times from their events, set-based.

    Two probes per customer on the (customer, occurred_at) index; used once after a bulk
    import instead of moving the times forward chunk by chunk.
    """
    refresh = f"""
        UPDATE {CUSTOMER} SET
            first_seen_at = (SELECT min(occurred_at) FROM {EVENT} e
                             WHERE e.customer_id = {CUSTOMER}.id),
            last_seen_at = (SELECT max(occurred_at) FROM {EVENT} e
                            WHERE e.customer_id = {CUSTOMER}.id)
        WHERE workspace_id = %s AND external_id IN ({{ids}})
    """
    size = 5_000 if connection.vendor == "postgresql" else _SQLITE_CHUNK
    with connection.cursor() as cursor:
        for chunk in _chunks(sorted(external_ids), size):
            cursor.execute(
                refresh.format(ids=", ".join(["%s"] * len(chunk))), [workspace_id, *chunk]
            )
