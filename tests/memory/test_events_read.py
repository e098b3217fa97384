"""Reading events out for the engine: names, times and messages survive the trip."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from memory.db.reads import CustomerFilter, events_frame, hours_since_epoch, traits_frame
from memory.models import Customer, Event, EventName

pytestmark = pytest.mark.django_db

WHEN = datetime(2025, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)


def _event(workspace, customer, name, key, message=None):
    return Event.objects.create(
        workspace=workspace,
        customer=customer,
        name=name,
        occurred_at=WHEN,
        message=message,
        dedup_key=key,
    )


def test_it_reads_names_times_and_messages_back(workspace, other_workspace):
    alice = Customer.objects.create(workspace=workspace, external_id="alice")
    _event(workspace, alice, "Order Completed", "k1")
    _event(workspace, alice, 'Café "crème" ☕, viewed', "k2")
    stranger = Customer.objects.create(workspace=other_workspace, external_id="stranger")
    _event(other_workspace, stranger, "Secret Event", "k3")

    frame = events_frame(workspace=workspace, before=None).sort("name")

    assert frame["name"].to_list() == ['Café "crème" ☕, viewed', "Order Completed"]
    assert frame["customer_id"].to_list() == [alice.pk, alice.pk]
    assert frame["message_id"].to_list() == [None, None]
    assert frame["t"].to_list() == pytest.approx(
        [hours_since_epoch(WHEN)] * 2, abs=1e-6
    )  # SQLite: julianday()


def test_it_learns_an_event_name_it_has_not_seen_before(workspace):
    if connection.vendor != "postgresql":
        pytest.skip("the name dictionary serves PostgreSQL's binary read")
    alice = Customer.objects.create(workspace=workspace, external_id="alice")
    _event(workspace, alice, "Order Completed", "k1")
    events_frame(workspace=workspace, before=None)
    assert set(EventName.objects.for_workspace(workspace).values_list("name", flat=True)) == {
        "Order Completed"
    }

    _event(workspace, alice, "Product Viewed", "k2")
    frame = events_frame(workspace=workspace, before=None)

    assert sorted(frame["name"].to_list()) == ["Order Completed", "Product Viewed"]
    assert EventName.objects.for_workspace(workspace).count() == 2


def test_it_reads_traits_as_numbers_dates_as_fractional_years_and_text_as_is(workspace):
    Customer.objects.create(
        workspace=workspace,
        external_id="a",
        traits={"joined": "2017-02-12", "income": 50_000, "gender": "F"},
    )
    Customer.objects.create(workspace=workspace, external_id="b", traits={"joined": "2018-01-01"})
    frame = traits_frame(workspace=workspace, keys=["joined", "income", "gender"]).sort(
        "customer_id"
    )
    # 12 February is day 43 of the year; 1 January day 1.
    assert frame["joined"].to_list() == pytest.approx([2017 + 43 / 366, 2018 + 1 / 366])
    assert frame["income"].to_list() == [50_000.0, None]
    assert frame["gender"].to_list() == ["F", None]


def test_a_read_by_customer_ids_returns_theirs_and_leaves_the_planner_as_it_was(workspace):
    customers = [
        Customer.objects.create(workspace=workspace, external_id=f"c{i}") for i in range(4)
    ]
    for i, customer in enumerate(customers):
        _event(workspace, customer, "Tap", f"k{i}")

    frame = events_frame(
        workspace=workspace,
        before=None,
        customers=CustomerFilter(customer_ids=(customers[1].pk, customers[3].pk)),
    )

    assert sorted(frame["customer_id"].to_list()) == [customers[1].pk, customers[3].pk]
    if connection.vendor == "postgresql":
        # The read rules out a sequential scan for itself only, not for later queries.
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_seqscan")
            assert cursor.fetchone() == ("on",)
            cursor.execute("SHOW enable_sort")  # nor hashing its blocks
            assert cursor.fetchone() == ("on",)
