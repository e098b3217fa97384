"""Reads of what Primer learned and the events it learns from, as frames for the engine.

Events leave the database set-based: binary blocks on PostgreSQL (see _read_binary), one
cursor on SQLite. Times become hours since the Unix epoch, the engine's clock.
"""

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import psycopg
from django.core.cache import cache
from django.db import connection
from django.db.models import Exists, F, FloatField, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from campaigns.models import Label, Message, Workspace
from memory.models import (
    Customer,
    CustomerLabelWeight,
    CustomerMessageHabituation,
    CustomerState,
    Event,
    EventName,
    PrimingIndicator,
    RecomputeRun,
)
from memory.scoring.baseline import date_as_year
from memory.scoring.habituation import WORN_OUT_MIN_LOAD
from memory.scoring.model import FEATURE_MEANINGS
from memory.scoring.priming import PRIMED_MIN_SCORE

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


# Events leave PostgreSQL as a few hundred big blocks of fixed-width binary rows that numpy
# reads in one go: one round trip per block, and no time or name formatted as text (that cost
# PostgreSQL ~1.3 µs a row, most of a 10M-event read). A row carries its name's 64-bit
# hashtextextended(); the EventName dictionary maps the hashes back.
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

    For a statement naming a few thousand customers by id, the planner sees their rows on most
    pages of a table stored in time order and scans all of it; their index finds the same rows
    in a fraction of the time (10M events: a 5k-customer read 1.3 s -> 0.6 s; 200k customers'
    habituation rows: a 2k-customer delete 0.4 s -> 0.06 s).
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
        # A hash bucket's events match far more rows than the planner guesses (mod(id, k) = 0:
        # 0.5%), so it would sort them into blocks, spilling to disk, rather than hash them
        # (a 2.7M-event sample of 10M: 3.2 s sorted, 2.2 s hashed).
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


def customer_memory_summary(
    *, workspace: Workspace, external_id: str, habituation_limit: int = 10
) -> dict:
    """Return one customer's memory: weights by label set, worn messages, primed state."""
    customer = Customer.objects.for_workspace(workspace).get(external_id=external_id)
    weights = (
        CustomerLabelWeight.objects.for_workspace(workspace)
        .filter(customer=customer)
        .select_related("label__label_set")
        .order_by("label__label_set__slug", "-weight", "label__slug")
    )
    by_set: dict[str, list[dict]] = {}
    for row in weights:
        by_set.setdefault(row.label.label_set.slug, []).append(
            {
                "label": row.label.slug,
                "name": row.label.name,
                "weight": row.weight,
                "rate": row.alpha / (row.alpha + row.beta),
                "interval": [row.weight_low, row.weight_high],
                "thompson_share": row.thompson_share,
                "evidence": row.evidence,
                "lift": row.lift,
                "exposures": row.exposures,
                "conversions": row.conversions,
            }
        )
    habituation = (
        CustomerMessageHabituation.objects.for_workspace(workspace)
        .filter(customer=customer)
        .select_related("message")
        .order_by("-load", "message__key")[:habituation_limit]
    )
    state = CustomerState.objects.for_workspace(workspace).filter(customer=customer).first()
    return {
        "customer": customer.external_id,
        "traits": customer.traits,
        "computed_at": state.last_recompute_at if state else None,
        "weights": by_set,
        "habituation": [
            {
                "message": row.message.key,
                "subject": row.message.subject,
                "load": row.load,
                "sends": row.sends,
                "last_sent_at": row.last_sent_at,
            }
            for row in habituation
        ],
        "primed_score": state.primed_score if state else 0.0,
        "baseline_rate": state.baseline_rate if state else None,
        "signals": state.signals if state else [],
    }


# Sorts of the customers page: the key column, highest first (customers without memory last).
CUSTOMER_SORTS = {"id": None, "primed": "state__primed_score", "baseline": "state__baseline_rate"}


@dataclass(frozen=True)
class CustomersPage:
    """A page of customers and the key that continues after it ('' on the last page)."""

    rows: list[dict]
    next_after: str


def customers_page(
    *,
    workspace: Workspace,
    search: str = "",
    after: str = "",
    primed_only: bool = False,
    worn_out_only: bool = False,
    sort: str = "id",
    size: int = 50,
) -> CustomersPage:
    """Return a page of customers with their memory state, after a keyset key.

    `sort` is "id" (external id order) or one of CUSTOMER_SORTS' columns, highest first with
    ties in external-id order; then `after` is "value|external id" from the previous page.
    `primed_only` keeps the customers primed now (primed score at least PRIMED_MIN_SCORE);
    `worn_out_only` those worn out on at least one message (load at least WORN_OUT_MIN_LOAD).
    Raises ValueError for an unknown sort or a malformed key.
    """
    if sort not in CUSTOMER_SORTS:
        raise ValueError(f"sort must be one of {', '.join(CUSTOMER_SORTS)}; got {sort!r}.")
    column = CUSTOMER_SORTS[sort]
    customers = Customer.objects.for_workspace(workspace)
    if search:
        customers = customers.filter(external_id__icontains=search)
    if primed_only:
        customers = customers.filter(state__primed_score__gte=PRIMED_MIN_SCORE)
    if worn_out_only:
        worn = CustomerMessageHabituation.objects.for_workspace(workspace).filter(
            customer_id=OuterRef("pk"), load__gte=WORN_OUT_MIN_LOAD
        )
        customers = customers.filter(Exists(worn))
    if column is None:
        customers = customers.order_by("external_id")
        if after:
            customers = customers.filter(external_id__gt=after)
    else:
        # Below every real value (primed scores sum logs of lifts above 1, baselines are rates:
        # neither is negative), so customers without memory come last.
        customers = customers.annotate(
            sort_key=Coalesce(F(column), Value(-1.0), output_field=FloatField())
        ).order_by("-sort_key", "external_id")
        if after:
            value, _, external_id = after.partition("|")
            try:
                key = float(value)
            except ValueError:
                key = math.nan
            if not math.isfinite(key):
                raise ValueError(f"after must be 'value|external id'; got {after!r}.")
            customers = customers.filter(
                Q(sort_key__lt=key) | Q(sort_key=key, external_id__gt=external_id)
            )
    rows = list(
        customers.values(
            "external_id",
            "last_seen_at",
            "state__primed_score",
            "state__baseline_rate",
            "state__last_recompute_at",
            *(["sort_key"] if column else []),
        )[: size + 1]
    )
    more, rows = len(rows) > size, rows[:size]
    next_after = ""
    if more:
        last = rows[-1]
        next_after = (
            last["external_id"] if column is None else f"{last['sort_key']!r}|{last['external_id']}"
        )
    return CustomersPage(rows=rows, next_after=next_after)


def recent_events(*, workspace: Workspace, external_id: str, limit: int = 30) -> list[Event]:
    """Return a customer's latest events, newest first, with the message they name."""
    return list(
        Event.objects.for_workspace(workspace)
        .filter(customer__external_id=external_id)
        .select_related("message")
        .order_by("-occurred_at", "-pk")[:limit]
    )


def priming_indicators(*, workspace: Workspace) -> list[dict]:
    """Return the workspace's priming indicators, strongest lift first."""
    return list(
        PrimingIndicator.objects.for_workspace(workspace)
        .order_by("-lift")
        .values(
            "event_name",
            "lift",
            "odds_ratio",
            "odds_ratio_low",
            "odds_ratio_high",
            "support",
            "median_lead_h",
            "computed_at",
        )
    )


def recompute_runs(*, workspace: Workspace, limit: int = 10) -> list[RecomputeRun]:
    """Return the workspace's latest recompute runs, newest first."""
    return list(
        RecomputeRun.objects.for_workspace(workspace)
        .defer("population")
        .order_by("-created_at")[:limit]
    )


def latest_succeeded_run(*, workspace: Workspace) -> RecomputeRun | None:
    """Return the workspace's newest successful recompute run (its population left unread)."""
    return (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status=RecomputeRun.Status.SUCCEEDED)
        .defer("population")
        .order_by("-created_at")
        .first()
    )


GLANCE_CACHE_SECONDS = 24 * 3600


def _derived_counts(workspace: Workspace) -> dict[str, int]:
    states = CustomerState.objects.for_workspace(workspace)
    return {
        "with_memory": states.count(),
        "primed_now": states.filter(primed_score__gte=PRIMED_MIN_SCORE).count(),
        "worn_out": CustomerMessageHabituation.objects.for_workspace(workspace)
        .filter(load__gte=WORN_OUT_MIN_LOAD)
        .values("customer_id")
        .distinct()
        .count(),
    }


def memory_at_a_glance(*, workspace: Workspace, run: RecomputeRun | None) -> dict:
    """Return the workspace's headline numbers: its memory's size, who is primed or worn out.

    The counts of derived rows (a scan of them: ~0.2 s at 200k customers) are cached per
    successful run, as only a run rewrites those rows; events, sends and the goal rate after a
    send are the run's own, as it counted them.
    """
    if run is None:
        derived = _derived_counts(workspace)
    else:
        # The finish time too: ids can come round again (a database restored, tests rolled back).
        finished = run.finished_at.timestamp() if run.finished_at else 0
        key = f"primer:glance:{workspace.pk}:{run.pk}:{finished}"
        derived = cache.get_or_set(
            key, lambda: _derived_counts(workspace), timeout=GLANCE_CACHE_SECONDS
        )
    stats = run.stats if run else {}
    return {
        "customers": Customer.objects.for_workspace(workspace).count(),
        **derived,
        "as_of": run.as_of if run else None,
        "events": run.events if run else None,
        "sends": (stats.get("counts") or {}).get("sends"),
        "goal_rate_after_send": stats.get("goal_rate_after_send"),
    }


def memory_summary(*, workspace: Workspace, run: RecomputeRun | None) -> dict:
    """Return the workspace's memory as the memory page and the summary API show it.

    ``glance`` (see ``memory_at_a_glance``); ``model``: what the run's scoring model weighs
    (``features``), its calibration and row counts, and the weeks it learned from
    (``replay_levels``), or None before any model; ``label_priors``: everyone's rate per label.
    """
    stats = run.stats if run else {}
    model = stats.get("model")
    return {
        "glance": memory_at_a_glance(workspace=workspace, run=run),
        "model": None
        if model is None
        else {
            "features": scoring_model_rows(stats),
            "calibration": model["calibration"],
            "training_rows": model["training_rows"],
            "calibration_rows": model["calibration_rows"],
            "replay_levels": replay_level_rows(stats.get("replay_levels") or []),
        },
        "label_priors": label_prior_rows(stats),
    }


def scoring_model_rows(stats: dict) -> list[dict]:
    """Return what the run's scoring model weighs, largest effect first, from its stored stats.

    Each row: the feature, what it measures, its coefficient, and how the calibrated odds of the
    goal change for one standard deviation of it over the fitting rows (empty for runs stored
    before the model kept its feature scales).
    """
    model = stats.get("model") or {}
    effects = model.get("effects_per_sd") or {}
    rows = [
        {
            "feature": name,
            "meaning": FEATURE_MEANINGS.get(name, ""),
            "coefficient": model["coefficients"].get(name),
            "effect_per_sd": effect,
            "odds_per_sd": float(np.exp(effect)),
        }
        for name, effect in effects.items()
    ]
    return sorted(rows, key=lambda row: -abs(row["effect_per_sd"]))


def replay_level_rows(levels: list[dict]) -> list[dict]:
    """Return a model's replayed slices (its ``replay_levels``), newest first, with their sends'
    time span as datetimes: the goal rate after a send in each, against the model's mean p."""
    rows = []
    for level in levels:
        start = datetime.fromtimestamp(level["cut_h"] * HOUR_S, tz=UTC)
        rows.append(
            {
                **level,
                "from": start,
                "to": start + timedelta(hours=level["step_h"]),
                "gap": level["mean_p"] - level["goal_rate"],
            }
        )
    return rows


def label_prior_rows(stats: dict) -> list[dict]:
    """Return everyone's response per label of the run (the "average customer"), set by set."""
    rows = stats.get("label_priors") or []
    return sorted(rows, key=lambda row: (row["label_set"], -(row["pooled_rate"] or 0.0)))
