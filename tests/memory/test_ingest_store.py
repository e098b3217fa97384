"""The set-based store: keys looked up, then COPY; the fallback when a writer races in between."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from memory.importers.lines import SourceLine
from memory.ingest import store
from memory.ingest.store import CustomerRecord, EventRecord, KnownCustomers, rows_store
from memory.models import Customer, Event
from memory.services import events_import
from tests.conftest import require

pytestmark = pytest.mark.django_db

AT = datetime(2025, 6, 1, 10, tzinfo=UTC)


def record(key: str, user: str = "u1") -> EventRecord:
    return EventRecord(user, "", "Tap", AT, b"{}", None, "", key)


def customer(user: str = "u1", traits: dict | None = None, anonymous: str = "") -> CustomerRecord:
    return CustomerRecord(user, anonymous, traits or {}, AT, AT)


def store_rows(workspace, events, customers, known=None):
    with transaction.atomic():
        return rows_store(
            workspace_id=workspace.pk,
            customers=customers,
            events=events,
            received_at=AT,
            want_stored_keys=True,
            known=known,
        )


def test_a_key_repeated_within_one_call_is_stored_once(workspace):
    inserted, stored = store_rows(
        workspace, [record("k1"), record("k1"), record("k2")], [customer()]
    )
    assert (inserted, stored) == (2, {"k1", "k2"})
    assert sorted(Event.objects.for_workspace(workspace).values_list("dedup_key", flat=True)) == [
        "k1",
        "k2",
    ]


def test_it_falls_back_to_on_conflict_when_a_key_appears_after_the_lookup(workspace, monkeypatch):
    require(connection.vendor == "postgresql", "the COPY path and its fallback are PostgreSQL's")
    store_rows(workspace, [record("k1")], [customer()])
    # As if a concurrent writer stored k1 between the lookup and the COPY: the lookup sees
    # nothing, the COPY meets the unique key, and the fallback must still store k2 alone.
    monkeypatch.setattr(
        store,
        "_PG_STORED_KEYS",
        "SELECT dedup_key FROM memory_event WHERE workspace_id = %s AND %s::jsonb IS NULL",
    )
    inserted, stored = store_rows(workspace, [record("k1"), record("k2")], [customer()])
    assert (inserted, stored) == (1, {"k2"})
    assert Event.objects.for_workspace(workspace).count() == 2
    # The transaction is still usable after the undone COPY.
    assert store_rows(workspace, [record("k3")], [customer()]) == (1, {"k3"})


def test_a_known_customer_is_written_again_only_for_traits_or_a_new_anonymous_id(workspace):
    require(connection.vendor == "postgresql", "imports carry known customers on PostgreSQL")
    known = KnownCustomers()
    store_rows(workspace, [record("k1")], [customer()], known)
    assert "u1" in known.ids and "u1" not in known.with_anonymous
    assert not known.needs_write(customer())
    assert known.needs_write(customer(traits={"plan": "pro"}))
    assert known.needs_write(customer(anonymous="a-1"))
    assert known.needs_write(customer("u2"))

    store_rows(
        workspace, [record("k2")], [customer(traits={"plan": "pro"}, anonymous="a-1")], known
    )
    stored = Customer.objects.for_workspace(workspace).get(external_id="u1")
    assert (stored.traits, stored.anonymous_id) == ({"plan": "pro"}, "a-1")
    assert "u1" in known.with_anonymous
    assert Event.objects.for_workspace(workspace).filter(customer=stored).count() == 2


def test_chunks_of_one_import_merge_traits_and_widen_seen_times(workspace):
    lines = [
        b'{"type":"track","userId":"u1","event":"Tap","timestamp":"2025-06-02T00:00:00Z"}',
        b'{"type":"identify","userId":"u1","traits":{"plan":"pro"}}',
        b'{"type":"track","userId":"u1","event":"Tap","timestamp":"2025-06-01T00:00:00Z"}',
        b'{"type":"identify","userId":"u1","traits":{"seats":3}}',
        b'{"type":"track","userId":"u1","event":"Tap","timestamp":"2025-06-03T00:00:00Z"}',
    ]
    summary = events_import(
        workspace=workspace,
        lines=[SourceLine(number, payload=line) for number, line in enumerate(lines, 1)],
        source="chunks",
        chunk_size=1,
    )
    assert (summary.stored, summary.identified) == (3, 2)
    stored = Customer.objects.for_workspace(workspace).get(external_id="u1")
    assert stored.traits == {"plan": "pro", "seats": 3}
    assert stored.first_seen_at.date().isoformat() == "2025-06-01"
    assert stored.last_seen_at.date().isoformat() == "2025-06-03"
