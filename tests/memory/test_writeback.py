"""Bulk writes into the derived tables: what goes in comes back, nulls and times included."""

from datetime import UTC, datetime

import polars as pl
import pytest
from django.db import connection, transaction

from campaigns.models import Message
from memory.db.writeback import _binary_copy_rows, _delete_customers, frame_insert
from memory.models import Customer, CustomerMessageHabituation

pytestmark = pytest.mark.django_db


def test_it_writes_numbers_times_and_nulls_exactly(workspace):
    customers = [
        Customer.objects.create(workspace=workspace, external_id=f"c{i}") for i in range(3)
    ]
    message = Message.objects.create(workspace=workspace, key="m", body="Hello")
    sent = datetime(2025, 5, 6, 7, 8, 9, 123_456, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "workspace_id": [workspace.pk] * 3,
            "customer_id": [c.pk for c in customers],
            "message_id": [message.pk] * 3,
            "load": [0.1 + 0.2, 1e-300, 12345.678901234567],
            "sends": [3, 0, 2_000_000_000],
            "last_sent_at": [sent, None, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)],
            "computed_at": [sent] * 3,
        },
        schema_overrides={"sends": pl.Int64},
    )
    table = CustomerMessageHabituation._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # the binary COPY is what this test is about
            assert _binary_copy_rows(cursor, table, frame) is not None
        frame_insert(cursor, table, frame)

    stored = list(
        CustomerMessageHabituation.objects.for_workspace(workspace)
        .order_by("customer_id")
        .values_list("load", "sends", "last_sent_at", "computed_at")
    )
    assert stored == [
        (0.1 + 0.2, 3, sent, sent),
        (1e-300, 0, None, sent),
        (12345.678901234567, 2_000_000_000, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), sent),
    ]


def test_deleting_some_customers_rows_keeps_the_others_and_the_planner_as_it_was(workspace):
    customers = [
        Customer.objects.create(workspace=workspace, external_id=f"c{i}") for i in range(3)
    ]
    message = Message.objects.create(workspace=workspace, key="m", body="Hello")
    for customer in customers:
        CustomerMessageHabituation.objects.create(
            workspace=workspace,
            customer=customer,
            message=message,
            load=1.0,
            sends=1,
            computed_at=datetime(2025, 5, 6, tzinfo=UTC),
        )
    table = CustomerMessageHabituation._meta.db_table

    with transaction.atomic(), connection.cursor() as cursor:
        _delete_customers(cursor, table, workspace.pk, [customers[0].pk, customers[2].pk])
        if connection.vendor == "postgresql":
            # The delete rules out a sequential scan for itself only, not for the rest of
            # the swap's transaction.
            cursor.execute("SHOW enable_seqscan")
            assert cursor.fetchone() == ("on",)

    remaining = CustomerMessageHabituation.objects.for_workspace(workspace)
    assert list(remaining.values_list("customer_id", flat=True)) == [customers[1].pk]
