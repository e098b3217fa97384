"""Engine reads: events, traits and the catalogue as frames, in the engine's dense clock.

Events leave the database set-based: binary blocks on PostgreSQL (see _read_binary), one
cursor on SQLite. Times become hours since the Unix epoch, the engine's clock.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
import psycopg
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Label, Message, Workspace
from memory.models import Customer, EventName
from memory.scoring.baseline import date_as_year
from memory.scoring.sharded import NextBestAsked

HOUR_S = 3600.0


def hours_since_epoch(moment: datetime) -> float:
    """Return the engine's clock reading (hours since 1970-01-01 UTC) for an aware datetime."""
    return moment.timestamp() / HOUR_S


@dataclass(frozen=True)
class CustomerFilter:
    """Which customers of a workspace to read: a hash bucket, an explicit id list, or all.

    `other_shards`: every bucket but `shard` instead.
    """

    shard: int | None = None
    shards: int | None = None
    customer_ids: tuple[int, ...] | None = None
    other_shards: bool = False

    def sql(self, column: str) -> tuple[str, list]:
        clauses, params = [], []
        if self.shards:
            clauses.append(f"MOD({column}, %s) {'<>' if self.other_shards else '='} %s")
            params += [self.shards, self.shard]
        if self.customer_ids is not None:
            if not self.customer_ids:
                clauses.append("1 = 0")
            elif connection.vendor == "postgresql":
                # One array parameter: a query with thousands of placeholders costs psycopg
                # more to parse than PostgreSQL takes to answer it.
                clauses.append(f"{column} = ANY(%s::bigint[])")
                params.append(list(self.customer_ids))
            else:
                clauses.append(f"{column} IN ({', '.join(['%s'] * len(self.customer_ids))})")
                params += list(self.customer_ids)
        return (" AND ".join(clauses) or "1 = 1"), params

    def expr(self, column: str) -> pl.Expr:
        """Return the same filter as a polars expression, for frames already in memory."""
        condition = pl.lit(True)
        if self.shards:
            bucket = pl.col(column) % self.shards
            in_shard = bucket != self.shard if self.other_shards else bucket == self.shard
            condition = condition & in_shard
        if self.customer_ids is not None:
            condition = condition & pl.col(column).is_in(list(self.customer_ids))
        return condition


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
    where = "workspace_id = %s AND " + where
    params = [workspace.pk, *params]
    if before is not None:
        where += " AND occurred_at < %s"
        # SQLite compares the text Django stores (UTC, 'YYYY-MM-DD HH:MM:SS[.ffffff]').
        params.append(connection.ops.adapt_datetimefield_value(before))
    if connection.vendor == "postgresql":
        by_ids = customers is not None and customers.customer_ids is not None
        return _read_binary(workspace, where, params, by_ids=by_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id, name, {_epoch_hours_sql('occurred_at')} AS t, message_id"
            " FROM memory_event WHERE " + where,
            params,
        )
        rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=EVENT_FRAME_SCHEMA, orient="row")


# Events leave PostgreSQL as big blocks of fixed-width binary rows, no text formatted (see
# docs/decisions/0100-binary-event-reads.md); EventName maps the name hashes back.
EVENT_BLOCKS = 256
_BINARY_ROW = np.dtype(
    [
        ("customer_id", ">i8"),
        ("name_hash", ">i8"),
        ("occurred_us", ">i8"),  # microseconds since 2000-01-01 UTC, PostgreSQL's own clock
        ("message_id", ">i8"),  # -1 for none
    ]
)
_POSTGRES_EPOCH_HOURS = 946_684_800 / HOUR_S
_NAME_HASH_SQL = "hashtextextended(name, 0)"
_FAILED = psycopg.pq.TransactionStatus.INERROR


@contextmanager
def planner_methods_ruled_out(cursor, *methods: str) -> Iterator[None]:
    """Turn off these planner methods (``enable_<method>``) for the statements inside."""
    for method in methods:
        cursor.execute(f"SET enable_{method} = off")
    try:
        yield
    finally:
        # In a failed transaction the SET is undone with it (and nothing more can run).
        if connection.connection.info.transaction_status != _FAILED:
            for method in methods:
                cursor.execute(f"RESET enable_{method}")


def sequential_scan_ruled_out(cursor):
    """Rule out the planner's sequential scan for the statements inside (PostgreSQL).

    For a few thousand customers named by id the planner scans the whole table; their index
    finds the rows in a fraction of the time (docs/decisions/0100-binary-event-reads.md).
    """
    return planner_methods_ruled_out(cursor, "seqscan")


def _read_binary(
    workspace: Workspace, where: str, params: list, *, by_ids: bool = False
) -> pl.DataFrame:
    """Read (customer_id, name, t, message_id) as binary blocks; see _BINARY_ROW.

    `by_ids`: the filter names customers by id (see sequential_scan_ruled_out).
    """
    blocks_sql = (
        "SELECT string_agg(int8send(customer_id) || int8send(" + _NAME_HASH_SQL + ")"
        " || timestamptz_send(occurred_at) || int8send(coalesce(message_id, -1)), ''::bytea)"
        " FROM memory_event WHERE " + where + f" GROUP BY MOD(customer_id, {EVENT_BLOCKS})"
    )
    connection.ensure_connection()
    # Django's cursors bind parameters client-side, which rules out binary results.
    with (
        psycopg.Cursor(connection.connection) as cursor,
        # The planner underestimates a hash bucket and would sort it, spilling to disk;
        # hashing is faster (docs/decisions/0100-binary-event-reads.md).
        planner_methods_ruled_out(cursor, "sort", *(["seqscan"] if by_ids else [])),
    ):
        cursor.execute(blocks_sql, params, binary=True)
        blocks = [block for (block,) in cursor.fetchall()]
    rows = np.frombuffer(b"".join(blocks), dtype=_BINARY_ROW)
    del blocks
    hashes = rows["name_hash"].astype(np.int64)
    names = event_names(workspace=workspace, hashes=np.unique(hashes))
    return pl.DataFrame(
        {
            "customer_id": rows["customer_id"].astype(np.int64),
            "name": pl.Series(hashes).replace_strict(names, return_dtype=pl.Utf8),
            "t": rows["occurred_us"].astype(np.float64) / (HOUR_S * 1e6) + _POSTGRES_EPOCH_HOURS,
            "message_id": rows["message_id"].astype(np.int64),
        },
        schema=EVENT_FRAME_SCHEMA,
    ).with_columns(
        pl.when(pl.col("message_id") >= 0).then(pl.col("message_id")).alias("message_id")
    )


def event_names(*, workspace: Workspace, hashes: np.ndarray) -> dict[int, str]:
    """Return {hash: name} covering these name hashes, learning unknown ones from the events.

    Learning costs one scan of the workspace's events, once per new event name.
    """
    known = dict(EventName.objects.for_workspace(workspace).values_list("name_hash", "name"))
    if set(hashes.tolist()) <= known.keys():
        return known
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT {_NAME_HASH_SQL}, name FROM memory_event WHERE workspace_id = %s",
            [workspace.pk],
        )
        found = cursor.fetchall()
    if len({name_hash for name_hash, _ in found}) != len(found):
        raise RuntimeError("Two event names share a 64-bit hash; the events cannot be read.")
    EventName.objects.bulk_create(
        [
            EventName(workspace=workspace, name_hash=name_hash, name=name)
            for name_hash, name in found
            if name_hash not in known
        ],
        ignore_conflicts=True,
    )
    known.update(found)
    unknown = set(hashes.tolist()) - known.keys()
    if unknown:
        raise RuntimeError(f"Event name hashes without a name: {sorted(unknown)[:5]}")
    return known


@dataclass(frozen=True)
class Catalogue:
    """The workspace's messages and labels, with the dense indices the engine works in."""

    messages: pl.DataFrame  # message (dense), message_id, key, text, active
    message_labels: pl.DataFrame  # message (dense), label_set, label
    labels: pl.DataFrame  # label_id, label_set, label, boost, active
    # Messages of the live campaigns: stored for every customer wherever they rank.
    campaign_message_ids: frozenset[int] = frozenset()

    def message_index(self, message_ids: pl.Series) -> pl.Series:
        """Map database message ids to the engine's dense message indices (null if unknown)."""
        lookup = self.messages.select("message_id", "message")
        frame = pl.DataFrame({"message_id": message_ids}).join(
            lookup, on="message_id", how="left", maintain_order="left"
        )
        return frame["message"]

    def next_best_asked(self, top: int) -> NextBestAsked:
        """Return what stored next best lists rank: the active messages, the active labels'
        boosts, `top` per customer."""
        active = self.messages.filter(pl.col("active"))
        in_campaigns = active.filter(pl.col("message_id").is_in(list(self.campaign_message_ids)))
        return NextBestAsked(
            candidates=active["message"].to_numpy(),
            boosts=self.labels.filter(pl.col("active")).select("label_set", "label", "boost"),
            top=top,
            always=in_campaigns["message"].to_numpy(),
        )


def catalogue_of(*, workspace: Workspace) -> Catalogue:
    """Return every message (ordered by id) and label of the workspace."""
    messages = list(
        Message.objects.for_workspace(workspace)
        .order_by("pk")
        .values_list("pk", "key", "active", "subject", "body")
    )
    message_frame = pl.DataFrame(
        {
            "message": np.arange(len(messages), dtype=np.int64),
            "message_id": [row[0] for row in messages],
            "key": [row[1] for row in messages],
            "text": ["\n".join(part for part in row[3:] if part) for row in messages],
            "active": [row[2] for row in messages],
        },
        schema={
            "message": pl.Int64,
            "message_id": pl.Int64,
            "key": pl.Utf8,
            "text": pl.Utf8,
            "active": pl.Boolean,
        },
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
    return Catalogue(
        messages=message_frame,
        message_labels=message_labels,
        labels=labels,
        campaign_message_ids=live_campaign_message_ids(workspace=workspace),
    )


def live_campaign_message_ids(*, workspace: Workspace) -> frozenset[int]:
    """Return the messages of the workspace's live campaigns (active, not ended), the most
    recently created campaigns first up to PRIMER_NEXT_BEST_CAMPAIGN_MESSAGES messages."""
    live = (
        Campaign.objects.for_workspace(workspace)
        .filter(Campaign.live_q(timezone.now()))
        .order_by("-created_at", "-pk")
    )
    cap = settings.PRIMER_NEXT_BEST_CAMPAIGN_MESSAGES
    kept: set[int] = set()
    for campaign in live.prefetch_related("messages"):
        ids = {message.pk for message in campaign.messages.all() if message.active}
        if len(kept | ids) > cap:
            break
        kept |= ids
    return frozenset(kept)


EXPORT_KINDS = {
    "weights": (
        "memory_customerlabelweight",
        """SELECT d.id, c.external_id AS customer, ls.slug AS label_set, l.slug AS label,
                  d.weight, d.weight_low, d.weight_high, d.thompson_share, d.evidence, d.lift,
                  d.alpha, d.beta,
                  d.exposures, d.conversions, d.computed_at
           FROM memory_customerlabelweight d
           JOIN memory_customer c ON c.id = d.customer_id
           JOIN campaigns_label l ON l.id = d.label_id
           JOIN campaigns_labelset ls ON ls.id = l.label_set_id""",
    ),
    "habituation": (
        "memory_customermessagehabituation",
        """SELECT d.id, c.external_id AS customer, m.key AS message, d.load, d.sends,
                  d.last_sent_at, d.computed_at
           FROM memory_customermessagehabituation d
           JOIN memory_customer c ON c.id = d.customer_id
           JOIN campaigns_message m ON m.id = d.message_id""",
    ),
    "priming": (
        "memory_primingindicator",
        """SELECT d.id, d.event_name, d.lift, d.odds_ratio, d.odds_ratio_low, d.odds_ratio_high,
                  d.support, d.median_lead_h, d.computed_at
           FROM memory_primingindicator d""",
    ),
}


def memory_export_chunks(
    *, workspace: Workspace, kind: str, chunk_size: int = 50_000
) -> Iterator[pl.DataFrame]:
    """Yield the workspace's derived rows of one kind in id order, a chunk at a time.

    Keyset pagination on the row id keeps memory flat however large the table is.
    """
    if kind not in EXPORT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(EXPORT_KINDS)}; got {kind!r}.")
    _, select = EXPORT_KINDS[kind]
    sql = f"{select} WHERE d.workspace_id = %s AND d.id > %s ORDER BY d.id LIMIT %s"
    last_id = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [workspace.pk, last_id, chunk_size])
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        if not rows:
            return
        frame = pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)
        last_id = int(frame["id"][-1])
        yield frame.drop("id")
        if len(rows) < chunk_size:
            return


# Traits feed the baseline prior by segment; a few common keys are enough and keep it cheap.
MAX_TRAIT_KEYS = 8
MIN_TRAIT_SHARE = 0.05


def trait_keys_of(*, workspace: Workspace, sample: int = 20_000) -> list[str]:
    """Return the trait keys common enough (in a sample of customers) to segment priors by."""
    rows = list(
        Customer.objects.for_workspace(workspace)
        .order_by("pk")
        .values_list("traits", flat=True)[:sample]
    )
    counts: dict[str, int] = {}
    for traits in rows:
        for key, value in (traits or {}).items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                counts[key] = counts.get(key, 0) + 1
    common = [k for k, n in counts.items() if rows and n / len(rows) >= MIN_TRAIT_SHARE]
    return sorted(common, key=lambda k: (-counts[k], k))[:MAX_TRAIT_KEYS]


def traits_frame(
    *, workspace: Workspace, keys: list[str], customers: CustomerFilter | None = None
) -> pl.DataFrame:
    """Return customer_id and one column per trait key: numbers as floats, ISO dates as years."""
    where, params = (customers or CustomerFilter()).sql("id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, traits FROM memory_customer WHERE workspace_id = %s AND {where}",
            [workspace.pk, *params],
        )
        rows = cursor.fetchall()
    ids = [row[0] for row in rows]
    decoded = [row[1] if isinstance(row[1], dict) else _json_or_empty(row[1]) for row in rows]
    columns: dict[str, pl.Series] = {"customer_id": pl.Series(ids, dtype=pl.Int64)}
    for key in keys:
        values = [traits.get(key) for traits in decoded]
        columns[key] = _trait_series(key, values)
    return pl.DataFrame(columns)


def _json_or_empty(text) -> dict:
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _trait_series(key: str, values: list) -> pl.Series:
    numbers = [v for v in values if v is not None]
    if numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        return pl.Series(key, values, dtype=pl.Float64)
    text = pl.Series(key, [None if v is None else str(v) for v in values], dtype=pl.Utf8)
    as_date = text.str.to_date(strict=False)
    if numbers and as_date.null_count() == text.null_count():
        return date_as_year(as_date).alias(key)
    return text
