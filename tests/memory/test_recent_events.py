"""A customer's latest events are read through the (customer, occurred_at) index."""

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from memory.models import Customer, Event
from memory.selectors import recent_events
from tests.conftest import require


def _events(workspace, customer, count: int, start: datetime) -> None:
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            customer=customer,
            name="Product Viewed",
            occurred_at=start + timedelta(minutes=i),
            dedup_key=f"{customer.external_id}-{i}",
        )
        for i in range(count)
    )


def test_it_returns_the_customers_newest_events_only(workspace, other_workspace):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    mine = Customer.objects.create(workspace=workspace, external_id="c1")
    other = Customer.objects.create(workspace=workspace, external_id="c2")
    theirs = Customer.objects.create(workspace=other_workspace, external_id="c1")
    _events(workspace, mine, 40, start)
    _events(workspace, other, 5, start + timedelta(days=1))
    _events(other_workspace, theirs, 5, start + timedelta(days=2))

    events = recent_events(workspace=workspace, external_id="c1", limit=30)

    assert [event.customer_id for event in events] == [mine.pk] * 30
    assert events[0].occurred_at == start + timedelta(minutes=39)
    assert [e.occurred_at for e in events] == sorted((e.occurred_at for e in events), reverse=True)
    assert recent_events(workspace=workspace, external_id="nobody") == []


def test_it_reads_through_the_customer_timeline_index(workspace):
    require(connection.vendor == "postgresql", "the plan is PostgreSQL's")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for index in range(20):
        customer = Customer.objects.create(workspace=workspace, external_id=f"c{index}")
        _events(workspace, customer, 50, start)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE memory_event")
        cursor.execute("ANALYZE memory_customer")
        # A table this small would be scanned whole; at 10M events a scan is what must not be.
        cursor.execute("SET LOCAL enable_seqscan = off")
        with CaptureQueriesContext(connection) as captured:
            recent_events(workspace=workspace, external_id="c7")
        (read,) = [q["sql"] for q in captured.captured_queries if "memory_event" in q["sql"]]
        cursor.execute(f"EXPLAIN {read}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "event_customer_timeline" in plan, plan
    assert "event_workspace_time" not in plan, plan
    # Joined on the external id, the 10M planner walked everyone's events by time instead
    # (a table this small cannot show it): the read names the customer by id.
    assert "memory_customer" not in read.replace("memory_customer_id", ""), read
