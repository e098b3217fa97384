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


def timing_issues(occurred: Iterable[datetime], received_at: datetime) -> Counter:
    """Count the late and the future-dated among event times received at `received_at`."""
    late_before, future_after = received_at - LATE_AFTER, received_at + FUTURE_SKEW
    tally: Counter = Counter()
    for moment in occurred:
        if moment < late_before:
            tally[IngestIssueCount.Kind.LATE.value] += 1
        elif moment > future_after:
            tally[IngestIssueCount.Kind.FUTURE.value] += 1
    return tally


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


def day_counts_of(events: Iterable) -> Counter:
    """Count stored events (anything with `name` and `occurred_at`) by (UTC day, name)."""
    return Counter((e.occurred_at.date(), e.name) for e in events)


def rejections_of(reasons: Iterable[tuple[str, str]], day: date) -> Counter:
    """Count (field, reason) rejections received on `day` by their reason."""
    kind = IngestIssueCount.Kind.REJECTED.value
    return Counter((day, kind, reason_of(field, reason)) for field, reason in reasons)
