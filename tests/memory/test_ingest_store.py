"""The set-based store: keys looked up, then COPY; the fallback when a writer races in between;
events without database-level foreign keys, their deletes cascaded by Django."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from campaigns.catalogue.services import MessageSpec, messages_upsert
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


def store_rows(workspace, events, customers, known=None, look_up=True):
    with transaction.atomic():
        return rows_store(
            workspace_id=workspace.pk,
            customers=customers,
            events=events,
            received_at=AT,
            want_stored_keys=True,
            known=known,
            look_up=look_up,
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


def test_without_the_lookup_a_key_already_stored_is_still_stored_once(workspace):
    store_rows(workspace, [record("k1")], [customer()])
    assert store_rows(workspace, [record("k1"), record("k2")], [customer()], look_up=False) == (
        1,
        {"k2"},
    )
    assert Event.objects.for_workspace(workspace).count() == 2


def test_an_import_run_again_in_chunks_adds_nothing(workspace):
    lines = [
        SourceLine(n, payload=b'{"type":"track","userId":"u1","event":"Tap","messageId":"m%d"}' % n)
        for n in range(1, 6)
    ]
    first = events_import(workspace=workspace, lines=lines, source="f", chunk_size=2)
    again = events_import(workspace=workspace, lines=lines, source="f", chunk_size=2)
    assert (first.stored, first.duplicates) == (5, 0)
    assert (again.stored, again.duplicates) == (0, 5)
    assert Event.objects.for_workspace(workspace).count() == 5


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


def test_a_customer_the_upsert_leaves_unchanged_is_still_found(workspace):
    store_rows(workspace, [record("k1")], [customer(traits={"plan": "pro"})])
    # Same span, no traits: the upsert changes nothing and returns no id for u1, so the
    # store must look it up to file the event under the same customer.
    assert store_rows(workspace, [record("k2")], [customer()]) == (1, {"k2"})
    (stored,) = Customer.objects.for_workspace(workspace)
    assert stored.traits == {"plan": "pro"}
    assert sorted(stored.events.values_list("dedup_key", flat=True)) == ["k1", "k2"]


# --- Events carry no database-level foreign keys: Django's deletes still cascade ----------


def test_events_carry_no_database_foreign_keys_on_postgresql(workspace):
    require(connection.vendor == "postgresql", "the constraints are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'memory_event'::regclass"
            " AND contype = 'f'"
        )
        assert cursor.fetchone() == (0,)


def test_deleting_a_customer_deletes_their_events(workspace):
    store_rows(workspace, [record("k1"), record("k2", "u2")], [customer(), customer("u2")])
    Customer.objects.for_workspace(workspace).get(external_id="u1").delete()
    assert list(Event.objects.for_workspace(workspace).values_list("dedup_key", flat=True)) == [
        "k2"
    ]


def test_deleting_a_workspace_deletes_its_customers_and_events(workspace, other_workspace):
    store_rows(workspace, [record("k1")], [customer()])
    store_rows(other_workspace, [record("k1")], [customer()])
    workspace.delete()
    assert not Event.unscoped.filter(workspace_id=workspace.pk).exists()
    assert not Customer.unscoped.filter(workspace_id=workspace.pk).exists()
    assert Event.objects.for_workspace(other_workspace).count() == 1


def test_deleting_a_message_keeps_its_events_without_it(workspace):
    (message,) = messages_upsert(workspace=workspace, specs=[MessageSpec(key="welcome")])
    sent = record("k1")._replace(message_id=message.pk, message_key="welcome")
    store_rows(workspace, [sent], [customer()])
    message.delete()
    event = Event.objects.for_workspace(workspace).get()
    assert (event.message_id, event.message_key) == (None, "welcome")
    assert event.refers_to_unknown_message
