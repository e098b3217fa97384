"""Tallies the ingest path keeps as it stores or rejects items: the Overview's per-day figures.

Events stored per (occurrence day, name); items rejected per (receipt day, reason); events
stored late or future-dated per receipt day. Each tally is one set-based upsert per batch, in
the batch's transaction, so the insight pages read a few rows per day instead of the events.
See docs/decisions/0310-insight-rollups.md.
"""

import re
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from operator import attrgetter

import msgspec
from django.db import connection

from memory.models import EventDayCount, IngestIssueCount

# An event received this long after it happened is late (a device that was offline, a queue
# that backed up); one that happened after its receipt by more than the skew is future-dated
# (accepted up to PRIMER_INGEST_MAX_FUTURE_H, rejected beyond).
LATE_AFTER = timedelta(hours=24)
FUTURE_SKEW = timedelta(minutes=5)
# Concurrent writers spread over this many rows per counter (by backend id): they rarely wait.
SLOTS = 16
REASON_CHARS = 200

DAYS = EventDayCount._meta.db_table
ISSUES = IngestIssueCount._meta.db_table

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ][\d:.]+(?:[+-]\d{2}:?\d{2}|Z)?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def reason_of(field: str, reason: str) -> str:
    """Return a rejection's reason without the item's own values, so like reasons count as one."""
    text = _NUMBER.sub("N", _TIME.sub("<time>", _QUOTED.sub("…", reason)))
    return (f"{field}: {text}" if field else text)[:REASON_CHARS]


def batch_tallies(events: list, received_at: datetime, *, timing: bool) -> tuple[Counter, Counter]:
    """Return ({(day, name): events}, {(day, kind, ""): events}) for events just stored.

    `events`: anything with `name`, `occurred_at`, `message_key` and `message_id`. The issues
    are counted on the receipt day: late and future-dated only when `timing` (live
    ingestion), events naming a message Primer does not know always. It runs in every ingest
    transaction, so the loops are C's (Counter, map), not Python's.
    """
    moments = [e.occurred_at for e in events]
    days = Counter(zip(map(datetime.date, moments), map(attrgetter("name"), events), strict=True))
    kinds = IngestIssueCount.Kind
    counts = {
        kinds.UNKNOWN_MESSAGE: sum(1 for e in events if e.message_key and e.message_id is None)
    }
    if timing:
        counts[kinds.LATE] = sum(map((received_at - LATE_AFTER).__gt__, moments))
        counts[kinds.FUTURE] = sum(map((received_at + FUTURE_SKEW).__lt__, moments))
    day = received_at.date()
    issues = Counter({(day, kind.value, ""): n for kind, n in counts.items() if n})
    return days, issues


_PG_DAYS_ADD = f"""
INSERT INTO {DAYS} (workspace_id, day, name, slot, events)
SELECT %s, s.d, s.n, pg_backend_pid() %% {SLOTS}, s.c
FROM json_to_recordset(%s::json) AS s (d date, n text, c bigint)
ORDER BY s.d, s.n
ON CONFLICT (workspace_id, day, name, slot) DO UPDATE SET events = {DAYS}.events + EXCLUDED.events
"""
_PG_ISSUES_ADD = f"""
INSERT INTO {ISSUES} (workspace_id, day, kind, reason, slot, count)
SELECT %s, s.d, s.k, s.r, pg_backend_pid() %% {SLOTS}, s.c
FROM json_to_recordset(%s::json) AS s (d date, k text, r text, c bigint)
ORDER BY s.d, s.k, s.r
ON CONFLICT (workspace_id, day, kind, reason, slot)
DO UPDATE SET count = {ISSUES}.count + EXCLUDED.count
"""
_SQLITE_DAYS_ADD = f"""
INSERT INTO {DAYS} (workspace_id, day, name, slot, events) VALUES (%s, %s, %s, 0, %s)
ON CONFLICT (workspace_id, day, name, slot) DO UPDATE SET events = events + excluded.events
"""
_SQLITE_ISSUES_ADD = f"""
INSERT INTO {ISSUES} (workspace_id, day, kind, reason, slot, count) VALUES (%s, %s, %s, %s, 0, %s)
ON CONFLICT (workspace_id, day, kind, reason, slot) DO UPDATE SET count = count + excluded.count
"""


def tallies_add(
    *,
    workspace_id: int,
    days: Counter | None = None,
    issues: Counter | None = None,
) -> None:
    """Add {(day, name): events} and {(day, kind, reason): items} to the workspace's tallies.

    Call inside the transaction that stores (or refuses) the items, so they count once.
    """
    days, issues = days or Counter(), issues or Counter()
    if not days and not issues:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            encode = msgspec.json.encode
            # Both upserts in one round trip.
            with raw.connection.pipeline():
                if days:
                    rows = [{"d": d, "n": n, "c": c} for (d, n), c in sorted(days.items())]
                    raw.execute(_PG_DAYS_ADD, [workspace_id, encode(rows).decode()])
                if issues:
                    rows = [
                        {"d": d, "k": k, "r": r, "c": c} for (d, k, r), c in sorted(issues.items())
                    ]
                    raw.execute(_PG_ISSUES_ADD, [workspace_id, encode(rows).decode()])
            return
        cursor.executemany(
            _SQLITE_DAYS_ADD,
            [(workspace_id, d.isoformat(), n, c) for (d, n), c in sorted(days.items())],
        )
        cursor.executemany(
            _SQLITE_ISSUES_ADD,
            [(workspace_id, d.isoformat(), k, r, c) for (d, k, r), c in sorted(issues.items())],
        )


def rejections_of(reasons: Iterable[tuple[str, str]], day: date) -> Counter:
    """Count (field, reason) rejections received on `day` by their reason."""
    kind = IngestIssueCount.Kind.REJECTED.value
    return Counter((day, kind, reason_of(field, reason)) for field, reason in reasons)
