"""The tallies the ingest path keeps for the insight pages: what was stored, rejected, late."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Sum

from memory.importers.lines import jsonl_lines
from memory.ingest.rollups import reason_of
from memory.insights import events_per_day, ingest_issues
from memory.models import Event, EventDayCount, IngestIssueCount
from memory.services import events_import, events_ingest
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = pytest.mark.django_db

RECEIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def track(n: int, when: datetime, event: str = "Product Viewed", **extra) -> dict:
    return {
        "type": "track",
        "userId": f"u{n % 3}",
        "event": event,
        "messageId": f"m-{event}-{n}-{when.isoformat()}",
        "timestamp": when.isoformat(),
        **extra,
    }


def ingest(workspace, payloads, received_at=RECEIVED):
    return events_ingest(workspace=workspace, payloads=payloads, received_at=received_at)


def day_counts(workspace) -> dict[tuple[date, str], int]:
    rows = (
        EventDayCount.objects.filter(workspace=workspace)
        .values("day", "name")
        .annotate(n=Sum("events"))
    )
    return {(row["day"], row["name"]): row["n"] for row in rows}


def issues(workspace) -> dict[tuple[str, str], int]:
    rows = (
        IngestIssueCount.objects.filter(workspace=workspace)
        .values("kind", "reason")
        .annotate(n=Sum("count"))
    )
    return {(row["kind"], row["reason"]): row["n"] for row in rows}


def stored_per_day_and_name(workspace) -> dict[tuple[date, str], int]:
    """What a scan of the events would say (the test's truth, never the pages')."""
    counts: dict = {}
    for name, occurred in Event.objects.for_workspace(workspace).values_list("name", "occurred_at"):
        key = (occurred.astimezone(UTC).date(), name)
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_it_counts_the_events_it_stores_per_day_and_name_once(workspace):
    day1, day2 = datetime(2026, 3, 9, 23, 30, tzinfo=UTC), datetime(2026, 3, 10, 0, 30, tzinfo=UTC)
    payloads = [track(n, day1) for n in range(5)] + [
        track(n, day2, "Order Completed") for n in range(3)
    ]

    ingest(workspace, payloads)
    ingest(workspace, payloads)  # retried: stored once, counted once
    ingest(workspace, [track(9, day2), track(9, day2)])  # a repeat within one batch

    assert day_counts(workspace) == {
        (date(2026, 3, 9), "Product Viewed"): 5,
        (date(2026, 3, 10), "Order Completed"): 3,
        (date(2026, 3, 10), "Product Viewed"): 1,
    }
    assert day_counts(workspace) == stored_per_day_and_name(workspace)


def test_it_counts_rejections_by_reason_and_receipt_day(workspace):
    payloads = [
        track(1, RECEIVED),
        {"type": "track", "event": "Nobody"},
        {"type": "track", "event": "Nobody either"},
        {"type": "shout", "userId": "u1"},
        # Two different times, one reason: the values do not split it.
        track(2, RECEIVED + timedelta(days=3)),
        track(3, RECEIVED + timedelta(days=4, hours=5)),
    ]

    result = ingest(workspace, payloads)
    ingest(workspace, [{"type": "track", "event": "Nobody"}], received_at=RECEIVED)  # all bad

    assert result.stored == 1 and len(result.rejections) == 5
    rejected = {reason: n for (kind, reason), n in issues(workspace).items() if kind == "rejected"}
    assert rejected == {
        "userId: userId or anonymousId is required": 3,
        "type: … is not supported; use track, identify, page or screen": 1,
        "timestamp: <time> is more than N hours after the event was received (<time>)": 2,
    }
    assert set(
        IngestIssueCount.objects.filter(workspace=workspace).values_list("day", flat=True)
    ) == {RECEIVED.date()}


def test_it_counts_late_and_future_dated_events_as_it_stores_them(workspace):
    ingest(
        workspace,
        [
            track(1, RECEIVED - timedelta(days=3)),  # late
            track(2, RECEIVED - timedelta(hours=25)),  # late
            track(3, RECEIVED - timedelta(hours=23)),  # on time
            track(4, RECEIVED + timedelta(hours=2)),  # future-dated, still accepted
            track(5, RECEIVED + timedelta(minutes=1)),  # clock skew, on time
        ],
    )

    assert issues(workspace) == {("late", ""): 2, ("future", ""): 1}
    by_kind = {row.kind: row.count for row in ingest_issues(workspace=workspace, days=10_000)}
    assert by_kind == {"late": 2, "future": 1}


def test_it_counts_events_naming_a_message_it_does_not_know(workspace):
    ingest(
        workspace,
        [
            track(1, RECEIVED, "Message Opened", properties={"message_id": "nowhere"}),
            track(2, RECEIVED, "Message Opened", properties={"message_id": "nowhere"}),
            track(3, RECEIVED, "Message Opened"),
        ],
    )

    assert issues(workspace) == {("unknown_message", ""): 2}


def test_a_file_import_counts_its_rejections_but_not_lateness(tmp_path: Path, workspace):
    path = tmp_path / "events.jsonl"
    lines = [
        '{"type": "track", "userId": "u2", "event": "Broken", ',
        '{"type": "track", "event": "Nobody"}',
        '{"type": "track", "userId": "u1", "event": "Tap", "timestamp": "2025-06-02T10:00:00Z"}',
        '{"type": "track", "userId": "u1", "event": "Tap", "timestamp": "2025-06-03T10:00:00Z"}',
    ]
    path.write_text("\n".join(lines) + "\n")

    summary = events_import(workspace=workspace, lines=jsonl_lines(path), source=str(path))

    assert summary.stored == 2
    found = issues(workspace)
    assert found[("rejected", "userId: userId or anonymousId is required")] == 1
    assert sum(n for (kind, _), n in found.items() if kind == "rejected") == 2
    assert not any(kind in ("late", "future") for kind, _ in found)  # a backfill is late
    assert day_counts(workspace) == {
        (date(2025, 6, 2), "Tap"): 1,
        (date(2025, 6, 3), "Tap"): 1,
    }


def test_the_tallies_are_per_workspace_and_survive_a_recompute(workspace, other_workspace):
    load_synthetic(workspace, customers=40, events=3_000)
    ingest(other_workspace, [track(1, RECEIVED), {"type": "track", "event": "Nobody"}])
    before = day_counts(workspace)

    recompute_here(workspace=workspace, as_of=AS_OF)

    assert day_counts(workspace) == before == stored_per_day_and_name(workspace)
    assert sum(before.values()) == Event.objects.for_workspace(workspace).count() > 3_000
    assert day_counts(other_workspace) == {(RECEIVED.date(), "Product Viewed"): 1}
    assert issues(workspace) == {}
    assert issues(other_workspace) == {("rejected", "userId: userId or anonymousId is required"): 1}


def test_concurrent_writers_spread_over_slots_and_still_add_up(workspace):
    if connection.vendor != "postgresql":
        pytest.skip("slots are PostgreSQL backend ids")
    ingest(workspace, [track(n, RECEIVED) for n in range(4)])
    EventDayCount.objects.filter(workspace=workspace).update(slot=99)  # as another backend left it
    ingest(workspace, [track(n, RECEIVED) for n in range(4, 7)])

    assert EventDayCount.objects.filter(workspace=workspace).count() == 2
    (row,) = events_per_day(workspace=workspace, days=10_000)
    assert row.other == 7


@pytest.mark.parametrize(
    ("field", "reason", "expected"),
    [
        ("type", "'shout' is not supported", "type: … is not supported"),
        (
            "",
            "malformed JSON: unexpected end at line 1 column 40",
            "malformed JSON: unexpected end at line N column N",
        ),
        ("event", "is longer than 200 characters", "event: is longer than N characters"),
    ],
)
def test_a_reason_keeps_its_words_and_drops_the_items_values(field, reason, expected):
    assert reason_of(field, reason) == expected
