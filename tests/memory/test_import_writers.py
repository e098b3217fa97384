"""Imports written by several threads: the same events, customers and summary as one writer;
a chunk undone by a deadlock between writers is written again."""

import json
from pathlib import Path

import psycopg
import pytest
from django.db import OperationalError, connection

from memory import services
from memory.importers.lines import jsonl_lines
from memory.models import Customer, Event
from memory.services import events_import
from tests.conftest import require


def segment_file(path: Path) -> Path:
    """Write 600 events of 40 customers, with repeated keys, a new message and two bad lines."""
    lines = []
    for i in range(600):
        user = f"u{i % 40}"
        if i % 97 == 13:
            lines.append("{not json")
            continue
        event = {
            "type": "track",
            "userId": user,
            "event": "Message Sent" if i % 10 == 0 else "Product Viewed",
            # Every key repeats 200 lines later, in another chunk: a duplicate, not a new event.
            "messageId": f"k-{i % 400}",
            "timestamp": f"2025-03-01T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
            "properties": {"sku": i},
        }
        if i % 10 == 0:
            # The same new message, described in many chunks: registered once.
            event["properties"] = {"message_id": "spring", "text": "Spring: 20% off"}
        if i % 50 == 7:
            event["context"] = {"traits": {"tier": f"t{i}"}}
        lines.append(json.dumps(event))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(workspace) -> set[tuple]:
    return set(
        Event.objects.for_workspace(workspace).values_list(
            "customer__external_id", "name", "dedup_key", "message_key", "message__key"
        )
    )


@pytest.mark.django_db(transaction=True)
def test_two_writers_store_what_one_writer_stores(tmp_path, make_workspace):
    require(connection.vendor == "postgresql", "imports use several writers on PostgreSQL")
    path = segment_file(tmp_path / "events.jsonl")
    one, two = make_workspace("one-writer"), make_workspace("two-writers")

    by_one = events_import(
        workspace=one, lines=jsonl_lines(path), source="f", chunk_size=40, writers=1
    )
    by_two = events_import(
        workspace=two, lines=jsonl_lines(path), source="f", chunk_size=40, writers=2
    )

    keys_on_good_lines = {i % 400 for i in range(600) if i % 97 != 13}
    assert by_two.stored == by_one.stored == len(keys_on_good_lines)
    assert by_two.duplicates == by_one.duplicates
    assert by_two.messages_registered == by_one.messages_registered == 1
    assert by_two.rejected == by_one.rejected
    assert [line for _, line, _, _ in by_two.rejected] == [14, 111, 208, 305, 402, 499, 596]
    assert by_two.customers == by_one.customers == 40
    assert stored(two) == stored(one)
    traits = dict(Customer.objects.for_workspace(two).values_list("external_id", "traits"))
    assert traits == dict(Customer.objects.for_workspace(one).values_list("external_id", "traits"))
    # Imported again with two writers: nothing new.
    again = events_import(
        workspace=two, lines=jsonl_lines(path), source="f", chunk_size=40, writers=2
    )
    assert again.stored == 0
    assert again.duplicates == by_two.stored + by_two.duplicates


@pytest.mark.django_db
def test_a_chunk_undone_by_a_deadlock_is_written_again(tmp_path, workspace, monkeypatch):
    path = segment_file(tmp_path / "events.jsonl")
    real_ingest = services._rows_ingest
    calls = {"n": 0, "known": []}

    def deadlocks_once(**kwargs):
        calls["n"] += 1
        calls["known"].append(kwargs["known"])
        if calls["n"] == 3:
            kwargs["known"].ids["ghost"] = -1  # an id from the transaction about to be undone
            try:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            except psycopg.Error as cause:
                raise OperationalError("deadlock detected") from cause
        return real_ingest(**kwargs)

    monkeypatch.setattr(services, "_rows_ingest", deadlocks_once)

    summary = events_import(
        workspace=workspace, lines=jsonl_lines(path), source="f", chunk_size=100, writers=1
    )

    assert calls["n"] == 7  # six chunks, the third written twice
    assert "ghost" not in calls["known"][3].ids  # the retry forgot what the undone one learnt
    assert summary.stored == Event.objects.for_workspace(workspace).count()
    assert summary.stored + summary.duplicates + summary.identified == 600 - 7


@pytest.mark.django_db
def test_other_database_errors_are_not_retried(tmp_path, workspace, monkeypatch):
    path = segment_file(tmp_path / "events.jsonl")
    calls = []

    def fails(**kwargs):
        calls.append(1)
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(services, "_rows_ingest", fails)

    with pytest.raises(OperationalError, match="server closed"):
        events_import(workspace=workspace, lines=jsonl_lines(path), source="f", writers=1)
    assert len(calls) == 1
