"""Write the engine's frames into the derived tables in bulk: COPY on PostgreSQL.

Frames arrive keyed by the engine's dense indices; they leave keyed by database ids.
"""

from __future__ import annotations

import io
import queue
import threading
from datetime import UTC, datetime

import numpy as np
import polars as pl
from django.db import connection

from campaigns.models import Workspace
from memory.db.reads import Catalogue, sequential_scan_ruled_out
from memory.scoring.frames import WEIGHT_COLUMNS

HABITUATION_COLUMNS = ["customer_id", "message_id", "load", "sends", "last_sent_at"]
STATE_COLUMNS = [
    "customer_id",
    "primed_score",
    "baseline_rate",
    "goal_count",
    "observed_hours",
    "hours_since_goal",
    "frequency_rate_h",
    "segment_rate_h",
    "signals",
]
NEXT_BEST_COLUMNS = [
    "customer_id",
    "message_id",
    "rank",
    "score",
    "p_goal",
    "boost",
    "pull",
    "labels",
    "wear_out",
    "spread",
    "cold_start",
]
NEXT_BEST_TABLE = "memory_customernextbest"
PRIMING_COLUMNS = [
    "event_name",
    "lift",
    "odds_ratio",
    "odds_ratio_low",
    "odds_ratio_high",
    "support",
    "median_lead_h",
]
# The most worn messages kept per customer: what pages, prompts and exports show, and a
# bounded write however many messages a workspace has.
HABITUATION_PER_CUSTOMER = 10
TABLES = {
    "weights": ("memory_customerlabelweight", ["customer_id", "label_id", *WEIGHT_COLUMNS]),
    "habituation": ("memory_customermessagehabituation", HABITUATION_COLUMNS),
    "state": ("memory_customerstate", STATE_COLUMNS),
    "next_best": (NEXT_BEST_TABLE, NEXT_BEST_COLUMNS),
}
# Each workspace partition's unique key (migration 0005 partitions these tables on PostgreSQL).
PARTITION_KEYS = {
    "memory_customerlabelweight": ("customer_id", "label_id"),
    "memory_customermessagehabituation": ("customer_id", "message_id"),
    "memory_customerstate": ("customer_id",),
    NEXT_BEST_TABLE: ("customer_id", "rank"),
}
# Indexes beyond the unique key, built on a new partition so attaching it finds them (the
# parent's index of the same columns, migration 0014): name suffix -> columns.
PARTITION_INDEXES = {
    "memory_customerstate": {"primed": "primed_score", "baseline": "baseline_rate"},
}
# pg_advisory_xact_lock(SWAP_LOCK, workspace id): one swap per workspace at a time.
SWAP_LOCK = 0x5052


def _hours_to_datetime(column: str) -> pl.Expr:
    return (pl.col(column) * 3_600_000_000).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))


def to_database_ids(
    result: dict[str, pl.DataFrame], *, customer_ids: pl.Series, catalogue: Catalogue
) -> dict[str, pl.DataFrame]:
    """Replace dense customer, label and message indices with database ids."""
    customers = customer_index(customer_ids)
    labels = catalogue.labels.select("label_id", "label_set", "label")
    messages = catalogue.messages.select("message", "message_id")
    weights = (
        result["weights"]
        .join(customers, on="customer")
        .join(labels, on=["label_set", "label"])
        .select("customer_id", "label_id", *WEIGHT_COLUMNS)
    )
    habituation = (
        result["habituation"]
        .sort(["customer", "load", "message"], descending=[False, True, False])
        .group_by("customer", maintain_order=True)
        .head(HABITUATION_PER_CUSTOMER)
        .join(customers, on="customer")
        .join(messages, on="message")
        .with_columns(_hours_to_datetime("last_sent_t").alias("last_sent_at"))
        .select(HABITUATION_COLUMNS)
    )
    state = (
        result["state"]
        .rename({"observed_h": "observed_hours"})
        .join(customers, on="customer")
        .select(STATE_COLUMNS)
    )
    frames = {"weights": weights, "habituation": habituation, "state": state}
    if "next_best" in result:
        frames["next_best"] = next_best_ids(
            result["next_best"], customers=customers, catalogue=catalogue
        )
    return frames


def customer_index(customer_ids: pl.Series) -> pl.DataFrame:
    """Return customer (dense index i) and customer_id (the database id at position i)."""
    return pl.DataFrame(
        {"customer": pl.int_range(0, customer_ids.len(), eager=True), "customer_id": customer_ids}
    ).with_columns(pl.col("customer").cast(pl.Int64))


def next_best_ids(
    frame: pl.DataFrame, *, customers: pl.DataFrame | None, catalogue: Catalogue
) -> pl.DataFrame:
    """Key next best rows by database ids; without `customers`, the population's list."""
    messages = catalogue.messages.select("message", "message_id")
    if customers is None:
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.Int64).alias("customer_id"), pl.lit(True).alias("cold_start")
        )
    else:
        frame = frame.join(customers, on="customer").with_columns(pl.lit(False).alias("cold_start"))
    return frame.join(messages, on="message").select(NEXT_BEST_COLUMNS)


def priming_rows(population) -> pl.DataFrame:
    """Return the population's priming indicators in the table's columns."""
    return population.priming.select(PRIMING_COLUMNS)


def partitioned() -> bool:
    """Return whether a full run swaps in whole workspace partitions (PostgreSQL)."""
    return connection.vendor == "postgresql"


def swap(
    *,
    workspace: Workspace,
    parts: list[dict[str, pl.DataFrame]],
    priming: pl.DataFrame,
    customer_ids: list[int] | None,
    computed_at: datetime,
    built: PartitionBuild | None = None,
    cold_start: pl.DataFrame | None = None,
) -> dict[str, int]:
    """Replace the workspace's derived rows (or only these customers') with the new ones.

    `cold_start`: the population's next best list (rows without a customer), replaced too.

    Call inside a transaction: deletes and inserts commit together. On PostgreSQL a full run
    swaps in the partitions `built` holds (built here from `parts` when None) instead of
    deleting and inserting rows.
    """
    counts = {}
    if customer_ids is None and partitioned():
        if built is None:
            with PartitionBuild(workspace_id=workspace.pk, computed_at=computed_at) as built:
                for part in parts:
                    built.add(part)
        counts.update(built.swap_in())
    with connection.cursor() as cursor:
        if partitioned():
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [SWAP_LOCK, workspace.pk])
        for name, (table, _) in TABLES.items():
            if name in counts:
                continue
            frames = [part[name] for part in parts if name in part and part[name].height]
            frame = pl.concat(frames) if frames else None
            if customer_ids is None:
                cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
            elif customer_ids:
                _delete_customers(cursor, table, workspace.pk, customer_ids)
            counts[name] = _insert(cursor, table, frame, workspace.pk, computed_at, name)
        if cold_start is not None:
            cursor.execute(
                f"DELETE FROM {NEXT_BEST_TABLE} WHERE workspace_id = %s AND customer_id IS NULL",
                [workspace.pk],
            )
            counts["next_best_cold_start"] = _insert(
                cursor, NEXT_BEST_TABLE, cold_start, workspace.pk, computed_at, "next_best"
            )
        cursor.execute(
            "DELETE FROM memory_primingindicator WHERE workspace_id = %s", [workspace.pk]
        )
        counts["priming"] = _insert(
            cursor, "memory_primingindicator", priming, workspace.pk, computed_at, "priming"
        )
    return counts


class PartitionBuild:
    """Build a workspace's new partitions (PostgreSQL) while the caller computes the rows.

    A thread COPYs each part handed to `add` into fresh, unindexed tables, then indexes them,
    on the caller's connection and inside its transaction: nothing shows before the swap
    commits, and a failure leaves nothing behind. Meanwhile the caller computes the next part,
    so PostgreSQL's share of the write (most of it) runs on another core. The caller must not
    use the connection between entering the build and `swap_in`.
    """

    def __init__(self, *, workspace_id: int, computed_at: datetime):
        if not connection.in_atomic_block:
            raise RuntimeError("Build partitions inside the transaction that swaps them in.")
        self.workspace_id = int(workspace_id)
        self.computed_at = computed_at
        self.counts = dict.fromkeys(TABLES, 0)
        connection.ensure_connection()
        self._raw = connection.connection  # psycopg's; Django's wrapper is per thread
        # Two parts in waiting at most: a slow write holds the computing back, not memory.
        self._parts: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._write, name="partition-build", daemon=True)

    def __enter__(self) -> PartitionBuild:
        self._thread.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        if self._thread.is_alive():
            self._abandoned = kind is not None  # the transaction rolls back: stop writing
            self._parts.put(None)
            self._thread.join()
        if kind is None and self._error is not None:
            raise self._error

    def behind(self) -> bool:
        """Whether `add` would wait now: the write has two parts queued already."""
        return self._parts.full()

    def add(self, part: dict[str, pl.DataFrame]) -> None:
        """Queue a part's frames (weights, habituation, state, next best) for the new partitions."""
        if self._error is not None:
            raise self._error
        self._parts.put(part)

    def _write(self) -> None:
        more = True
        try:
            with self._raw.cursor() as cursor:
                # One full run per workspace at a time: the staging tables' names are shared.
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", [SWAP_LOCK, self.workspace_id]
                )
                cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
                for table, _ in TABLES.values():
                    cursor.execute(
                        f'CREATE TABLE "{self._staging(table)}"'
                        f' (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
                    )
                while (part := self._parts.get()) is not None:
                    if not self._abandoned:
                        self._copy(cursor, part)
                more = False
                if not self._abandoned:
                    self._index(cursor)
        except BaseException as error:  # handed to the caller's thread by add or swap_in
            self._error = error
            while more and self._parts.get() is not None:  # let a waiting `add` go on
                pass

    def _copy(self, cursor, part: dict[str, pl.DataFrame]) -> None:
        for kind, (table, _) in TABLES.items():
            frame = part.get(kind)
            if frame is None:
                continue  # a streamed run adds next best lists once the model is fitted
            if frame.height:
                frame = frame.sort(list(PARTITION_KEYS[table]))  # a customer's rows together
            self.counts[kind] += _insert(
                cursor,
                self._staging(table),
                frame,
                self.workspace_id,
                self.computed_at,
                kind,
                freeze=True,
            )

    def _index(self, cursor) -> None:
        for table, _ in TABLES.values():
            staging = self._staging(table)
            cursor.execute(
                f'ALTER TABLE "{staging}" ADD CONSTRAINT "{staging}_pkey" PRIMARY KEY (id),'
                f' ADD CONSTRAINT "{staging}_key" UNIQUE ({", ".join(PARTITION_KEYS[table])}),'
                f' ADD CONSTRAINT "{staging}_workspace"'
                f" CHECK (workspace_id = {self.workspace_id})"
            )
            for suffix, columns in PARTITION_INDEXES.get(table, {}).items():
                cursor.execute(f'CREATE INDEX "{staging}_{suffix}" ON "{staging}" ({columns})')

    def _staging(self, table: str) -> str:
        return f"{table}_w{self.workspace_id}_new"

    def swap_in(self) -> dict[str, int]:
        """Wait for the build, then swap each new table in for the workspace's partition."""
        self.__exit__(None, None, None)
        with connection.cursor() as cursor:
            for table, _ in TABLES.values():
                partition, staging = f"{table}_w{self.workspace_id}", self._staging(table)
                # Only now take the parent's lock: the build above does not block readers.
                cursor.execute(
                    f'DELETE FROM "{table}_default" WHERE workspace_id = %s', [self.workspace_id]
                )
                cursor.execute(f'DROP TABLE IF EXISTS "{partition}"')
                cursor.execute(f'ALTER TABLE "{staging}" RENAME TO "{partition}"')
                for suffix in ("pkey", "key", "workspace"):
                    cursor.execute(
                        f'ALTER TABLE "{partition}" RENAME CONSTRAINT "{staging}_{suffix}"'
                        f' TO "{partition}_{suffix}"'
                    )
                for suffix in PARTITION_INDEXES.get(table, {}):
                    cursor.execute(
                        f'ALTER INDEX "{staging}_{suffix}" RENAME TO "{partition}_{suffix}"'
                    )
                cursor.execute(
                    f'ALTER TABLE "{table}" ATTACH PARTITION "{partition}"'
                    f" FOR VALUES IN ({self.workspace_id})"
                )
        return dict(self.counts)


def _delete_customers(cursor, table: str, workspace_id: int, customer_ids: list[int]) -> None:
    if connection.vendor == "postgresql":  # one array parameter, not thousands to parse
        with sequential_scan_ruled_out(cursor):
            cursor.execute(
                f"DELETE FROM {table} WHERE workspace_id = %s AND customer_id = ANY(%s::bigint[])",
                [workspace_id, list(customer_ids)],
            )
        return
    for start in range(0, len(customer_ids), 10_000):
        chunk = customer_ids[start : start + 10_000]
        cursor.execute(
            f"DELETE FROM {table} WHERE workspace_id = %s AND customer_id IN "
            f"({', '.join(['%s'] * len(chunk))})",
            [workspace_id, *chunk],
        )


def _insert(cursor, table, frame, workspace_id, computed_at, kind, *, freeze=False) -> int:
    if frame is None or frame.height == 0:
        return 0
    time_column = "last_recompute_at" if kind == "state" else "computed_at"
    frame = frame.with_columns(
        pl.lit(workspace_id).alias("workspace_id"),
        pl.lit(computed_at.astimezone(UTC)).alias(time_column),
    )
    if "signals" in frame.columns:
        frame = frame.with_columns(pl.col("signals").fill_null("[]"))
    frame_insert(cursor, table, frame, freeze=freeze)
    return frame.height


# Column types that binary COPY takes as fixed-width big-endian numbers.
_BINARY_TYPES = {
    "bigint": ">i8",
    "integer": ">i4",
    "smallint": ">i2",
    "double precision": ">f8",
    "real": ">f4",
    "timestamp with time zone": ">i8",  # microseconds since 2000-01-01 UTC
    "boolean": "?",  # one byte, 0 or 1
}
_POSTGRES_EPOCH_US = 946_684_800_000_000
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_BINARY_TRAILER = b"\xff\xff"


def _binary_copy_rows(cursor, table: str, frame: pl.DataFrame) -> bytes | None:
    """Return the frame as binary COPY data for the table, or None when it cannot be.

    Binary COPY skips PostgreSQL's text parsing of every number (float8in is most of a CSV
    COPY's cost). Columns must be fixed-width; rows are laid out with numpy, one block per
    pattern of nulls (a null field is a length of -1 and no value).
    """
    cursor.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [table],
    )
    types = dict(cursor.fetchall())
    if any(types.get(name) not in _BINARY_TYPES for name in frame.columns):
        return None
    if any(
        dtype.is_float() and not _BINARY_TYPES[types[name]].startswith(">f")
        for name, dtype in frame.schema.items()
    ):
        return None  # a float bound for an integer column: let PostgreSQL check it as text
    nullable = [name for name in frame.columns if frame[name].null_count()]
    if not nullable:
        return _BINARY_HEADER + _binary_block(frame, types, ()) + _BINARY_TRAILER
    patterns = frame.with_columns(pl.col(nullable).is_null().name.suffix("__null"))
    blocks = []
    for key, group in patterns.group_by(
        [f"{name}__null" for name in nullable], maintain_order=True
    ):
        nulls = tuple(name for name, is_null in zip(nullable, key, strict=True) if is_null)
        blocks.append(_binary_block(group.select(frame.columns), types, nulls))
    return _BINARY_HEADER + b"".join(blocks) + _BINARY_TRAILER


def _binary_block(frame: pl.DataFrame, types: dict[str, str], nulls: tuple[str, ...]) -> bytes:
    """Return binary COPY rows for a frame whose `nulls` columns are null in every row."""
    fields = [("count", ">i2")]
    for name in frame.columns:
        fields.append((f"{name}_length", ">i4"))
        if name not in nulls:
            fields.append((name, _BINARY_TYPES[types[name]]))
    rows = np.empty(frame.height, dtype=np.dtype(fields))
    rows["count"] = frame.width
    for name, dtype in frame.schema.items():
        if name in nulls:
            rows[f"{name}_length"] = -1
            continue
        rows[f"{name}_length"] = rows.dtype[name].itemsize
        column = frame[name]
        if isinstance(dtype, pl.Datetime):
            column = column.dt.convert_time_zone("UTC") if dtype.time_zone else column
            column = column.dt.epoch("us") - _POSTGRES_EPOCH_US
        rows[name] = column.to_numpy()
    return rows.tobytes()


def frame_insert(cursor, table: str, frame: pl.DataFrame, *, freeze: bool = False) -> None:
    """Insert a frame's rows into the table's same-named columns: COPY, or executemany.

    `freeze`: the table was created in this transaction, so its rows can be written frozen.
    """
    columns = ", ".join(frame.columns)
    if connection.vendor == "postgresql":
        options = ", FREEZE" if freeze else ""
        binary = _binary_copy_rows(cursor, table, frame)
        if binary is not None:
            with cursor.copy(
                f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT binary{options})"
            ) as copy:
                copy.write(binary)
            return
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.f%z")
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv{options})") as copy:
            copy.write(buffer.getvalue())
        return
    # Store times as Django does on SQLite, so text comparisons order them correctly.
    times = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    frame = frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        if frame.schema[name].time_zone
        else pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        for name in times
    )
    placeholders = ", ".join(["%s"] * frame.width)
    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", frame.rows())
