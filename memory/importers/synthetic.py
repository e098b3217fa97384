"""Load an engine-format workspace (e.g. a synthetic one) into the database, set-based.

For tests and benchmarks: customers and events go in with COPY on PostgreSQL (executemany on
SQLite), never one ORM save per row. Engine hours become times after `origin`.
"""

from collections import Counter
from datetime import datetime

import polars as pl
from django.db import connection, transaction

from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import Workspace
from memory.db.writeback import frame_insert
from memory.ingest.rollups import tallies_add

EVENT_COLUMNS = [
    "workspace_id",
    "customer_id",
    "name",
    "occurred_at",
    "received_at",
    "properties",
    "message_id",
    "message_key",
    "dedup_key",
]


@transaction.atomic
def engine_frames_load(
    *,
    workspace: Workspace,
    events: pl.DataFrame,
    messages: pl.DataFrame,
    message_labels: pl.DataFrame,
    origin: datetime,
    traits: pl.DataFrame | None = None,
    key_prefix: str = "c",
) -> dict[str, int]:
    """Store messages, customers (external id `{prefix}{index}`) and events; return counts."""
    labels_by_message: dict[int, dict[str, list[str]]] = {}
    for row in message_labels.iter_rows(named=True):
        labels_by_message.setdefault(row["message"], {}).setdefault(row["label_set"], []).append(
            row["label"]
        )
    stored = messages_upsert(
        workspace=workspace,
        specs=[
            MessageSpec(
                key=row["key"], body=row["text"], labels=labels_by_message.get(row["message"], {})
            )
            for row in messages.iter_rows(named=True)
        ],
    )
    message_ids = pl.DataFrame(
        {
            "message": messages["message"],
            "message_id": [m.pk for m in stored],
            "message_key": messages["key"],
        }
    )
    origin_us = int(origin.timestamp() * 1_000_000)
    timed = events.with_columns(
        (pl.lit(origin_us) + (pl.col("t") * 3_600_000_000).cast(pl.Int64))
        .cast(pl.Datetime("us", "UTC"))
        .alias("occurred_at")
    )
    spans = timed.group_by("customer").agg(
        pl.col("occurred_at").min().alias("first_seen_at"),
        pl.col("occurred_at").max().alias("last_seen_at"),
    )
    customers = spans.with_columns(
        pl.lit(workspace.pk).alias("workspace_id"),
        (pl.lit(key_prefix) + pl.col("customer").cast(pl.Utf8)).alias("external_id"),
        pl.lit("").alias("anonymous_id"),
    )
    if traits is not None:
        encoded = traits.select(
            "customer", pl.struct(pl.exclude("customer")).struct.json_encode().alias("traits")
        )
        customers = customers.join(encoded, on="customer", how="left")
    else:
        customers = customers.with_columns(pl.lit(None, dtype=pl.Utf8).alias("traits"))
    customers = customers.with_columns(pl.col("traits").fill_null("{}")).sort("customer")
    with connection.cursor() as cursor:
        frame_insert(
            cursor,
            "memory_customer",
            customers.select(
                "workspace_id",
                "external_id",
                "anonymous_id",
                "traits",
                "first_seen_at",
                "last_seen_at",
            ),
        )
        cursor.execute(
            "SELECT id, external_id FROM memory_customer WHERE workspace_id = %s", [workspace.pk]
        )
        ids = pl.DataFrame(
            cursor.fetchall(),
            schema={"customer_id": pl.Int64, "external_id": pl.Utf8},
            orient="row",
        )
        customer_ids = customers.select("customer", "external_id").join(ids, on="external_id")
        rows = (
            timed.with_row_index("n")
            .join(customer_ids.select("customer", "customer_id"), on="customer")
            .join(message_ids, on="message", how="left")
            .with_columns(
                pl.lit(workspace.pk).alias("workspace_id"),
                pl.col("occurred_at").alias("received_at"),
                pl.when(pl.col("message_key").is_not_null())
                .then(pl.lit('{"message_id": "') + pl.col("message_key") + pl.lit('"}'))
                .otherwise(pl.lit("{}"))
                .alias("properties"),
                pl.col("message_key").fill_null(""),
                (pl.lit(f"{key_prefix}-") + pl.col("n").cast(pl.Utf8)).alias("dedup_key"),
            )
            .select(EVENT_COLUMNS)
        )
        for start in range(0, rows.height, 1_000_000):
            frame_insert(cursor, "memory_event", rows.slice(start, 1_000_000))
    # The per-day tallies the ingest path keeps, counted here from the frame (not the table).
    days = timed.group_by(pl.col("occurred_at").dt.date().alias("day"), "name").agg(pl.len())
    tallies_add(
        workspace_id=workspace.pk,
        days=Counter({(day, name): count for day, name, count in days.iter_rows()}),
    )
    return {"customers": customers.height, "events": rows.height, "messages": len(stored)}
