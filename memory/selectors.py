"""Reads of what Primer learned and the events it learns from, as frames for the engine.

Events leave the database set-based: COPY on PostgreSQL (about a million rows a second here),
one cursor on SQLite. Times become hours since the Unix epoch, the engine's clock.
"""

import io
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
from django.db import connection
from django.db.models import QuerySet

from campaigns.models import Label, Message, Workspace
from memory.models import Event

HOUR_S = 3600.0


def hours_since_epoch(moment: datetime) -> float:
    """Return the engine's clock reading (hours since 1970-01-01 UTC) for an aware datetime."""
    return moment.timestamp() / HOUR_S


@dataclass(frozen=True)
class CustomerFilter:
    """Which customers of a workspace to read: a hash bucket, an explicit id list, or all."""

    shard: int | None = None
    shards: int | None = None
    customer_ids: tuple[int, ...] | None = None

    def sql(self, column: str) -> tuple[str, list]:
        clauses, params = [], []
        if self.shards:
            clauses.append(f"MOD({column}, %s) = %s")
            params += [self.shards, self.shard]
        if self.customer_ids is not None:
            if not self.customer_ids:
                clauses.append("1 = 0")
            else:
                clauses.append(f"{column} IN ({', '.join(['%s'] * len(self.customer_ids))})")
                params += list(self.customer_ids)
        return (" AND ".join(clauses) or "1 = 1"), params


def _epoch_hours_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8 / 3600.0"
    return f"(julianday({column}) - 2440587.5) * 24.0"


EVENT_FRAME_SCHEMA = {
    "customer_id": pl.Int64,
    "name": pl.Utf8,
    "t": pl.Float64,
    "message_id": pl.Int64,
}


def events_frame(
    *, workspace: Workspace, before: datetime | None, customers: CustomerFilter | None = None
) -> pl.DataFrame:
    """Return the workspace's events strictly before `before` (all when None), as a frame."""
    where, params = (customers or CustomerFilter()).sql("customer_id")
    sql = (
        f"SELECT customer_id, name, {_epoch_hours_sql('occurred_at')} AS t, message_id"
        " FROM memory_event WHERE workspace_id = %s AND " + where
    )
    params = [workspace.pk, *params]
    if before is not None:
        sql += " AND occurred_at < %s"
        params.append(before)
    if connection.vendor == "postgresql":
        return _copy_out(sql, params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=EVENT_FRAME_SCHEMA, orient="row")


def _copy_out(sql: str, params: list) -> pl.DataFrame:
    """Stream a query out of PostgreSQL with COPY and parse it with polars."""
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        # psycopg 3 binds parameters client-side for COPY, so a SELECT with %s works here.
        query = cursor.mogrify(sql, params)
        with cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                buffer.write(chunk)
    if buffer.tell() == 0:
        return pl.DataFrame(schema=EVENT_FRAME_SCHEMA)
    buffer.seek(0)
    return pl.read_csv(
        buffer, has_header=False, new_columns=list(EVENT_FRAME_SCHEMA), schema=EVENT_FRAME_SCHEMA
    )


@dataclass(frozen=True)
class Catalogue:
    """The workspace's messages and labels, with the dense indices the engine works in."""

    messages: pl.DataFrame  # message (dense), message_id, key, text
    message_labels: pl.DataFrame  # message (dense), label_set, label
    labels: pl.DataFrame  # label_id, label_set, label, boost, active

    def message_index(self, message_ids: pl.Series) -> pl.Series:
        """Map database message ids to the engine's dense message indices (null if unknown)."""
        lookup = self.messages.select("message_id", "message")
        frame = pl.DataFrame({"message_id": message_ids}).join(
            lookup, on="message_id", how="left", maintain_order="left"
        )
        return frame["message"]


def catalogue_of(*, workspace: Workspace) -> Catalogue:
    """Return every message (ordered by id) and label of the workspace."""
    messages = list(
        Message.objects.for_workspace(workspace)
        .order_by("pk")
        .values_list("pk", "key", "subject", "body")
    )
    message_frame = pl.DataFrame(
        {
            "message": np.arange(len(messages), dtype=np.int64),
            "message_id": [row[0] for row in messages],
            "key": [row[1] for row in messages],
            "text": ["\n".join(part for part in row[2:] if part) for row in messages],
        },
        schema={"message": pl.Int64, "message_id": pl.Int64, "key": pl.Utf8, "text": pl.Utf8},
    )
    links = list(
        Message.labels.through.objects.filter(message__workspace=workspace).values_list(
            "message_id", "label__label_set__slug", "label__slug"
        )
    )
    link_frame = pl.DataFrame(
        links, schema={"message_id": pl.Int64, "label_set": pl.Utf8, "label": pl.Utf8}, orient="row"
    )
    message_labels = link_frame.join(
        message_frame.select("message_id", "message"), on="message_id"
    ).select("message", "label_set", "label")
    labels = pl.DataFrame(
        list(
            Label.objects.for_workspace(workspace).values_list(
                "pk", "label_set__slug", "slug", "boost", "active"
            )
        ),
        schema={
            "label_id": pl.Int64,
            "label_set": pl.Utf8,
            "label": pl.Utf8,
            "boost": pl.Float64,
            "active": pl.Boolean,
        },
        orient="row",
    )
    return Catalogue(messages=message_frame, message_labels=message_labels, labels=labels)


def events_of_workspace(*, workspace: Workspace, customer: str | None = None) -> QuerySet[Event]:
    """Return the workspace's events, newest stored first, optionally one customer's."""
    events = (
        Event.objects.for_workspace(workspace).select_related("customer", "message").order_by("-id")
    )
    if customer is not None:
        events = events.filter(customer__external_id=customer)
    return events
