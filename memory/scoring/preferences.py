"""Pair each customer's sends that reached the goal with sends that did not (pure polars).

A pair is (chosen = a resolved send that reached the goal, rejected = a resolved send of another
message that did not), both the same customer's. Its prompt is rendered from the memory of the
snapshot at the start of the earlier send's snapshot step (a UTC day by default), so nothing at
or after the earlier send can reach it (docs/decisions/0400-preference-snapshots-and-pairs.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

SPLITS = ("train", "eval", "holdout")
# Knuth's multiplicative hash: a stable, well-spread customer split (polars' hash is not stable).
_SPREAD = 2_654_435_761


@dataclass(frozen=True)
class PairRules:
    """What makes a pair and where it goes."""

    window_h: float  # the attribution window: a train pair's later window closes before cutoff
    max_pairs: int = 3  # per customer (per split), nearest in time first
    min_evidence: int = 0  # the customer's sends before the earlier send
    cutoff_h: float | None = None  # train: both windows closed before it; eval: at or after it
    holdout_percent: int = 0  # customers held out whole, by a stable hash of their id
    snapshot_step_h: float = 24.0


def floor_to_step(t: pl.Expr, step_h: float) -> pl.Expr:
    """Return the start of the snapshot step holding each time (steps start at the epoch)."""
    return (t / step_h).floor() * step_h


def held_out(customer_id: pl.Expr, percent: int) -> pl.Expr:
    """Return whether a customer falls in the held-out share (a stable hash of the id)."""
    return ((customer_id * _SPREAD) % (1 << 32)) % 100 < percent


def preference_pairs(sends: pl.DataFrame, rules: PairRules) -> pl.DataFrame:
    """Return the pairs of resolved sends, at most `max_pairs` per customer and split.

    `sends`: customer_id, message_id, t (hours), resolved (bool), goal (0/1, null unresolved).
    Returns customer_id, chosen_message_id, chosen_t, rejected_message_id, rejected_t,
    earlier_t, snapshot_t, evidence, split; sorted by snapshot, customer, earlier send.
    """
    # The same message to the same customer at the same time is one send (a repeated line).
    sends = (
        sends.filter(pl.col("message_id").is_not_null()).unique(
            ["customer_id", "message_id", "t"], keep="first", maintain_order=True
        )
    ).with_columns(
        # How many of the customer's sends came strictly before this one.
        (pl.col("t").rank("min").over("customer_id") - 1).cast(pl.Int64).alias("prior")
    )
    resolved = sends.filter(pl.col("resolved") & pl.col("goal").is_not_null())
    chosen = resolved.filter(pl.col("goal") == 1).select(
        "customer_id",
        pl.col("message_id").alias("chosen_message_id"),
        pl.col("t").alias("chosen_t"),
        pl.col("prior").alias("chosen_prior"),
    )
    rejected = resolved.filter(pl.col("goal") == 0).select(
        "customer_id",
        pl.col("message_id").alias("rejected_message_id"),
        pl.col("t").alias("rejected_t"),
        pl.col("prior").alias("rejected_prior"),
    )
    pairs = (
        chosen.join(rejected, on="customer_id")
        .filter(pl.col("chosen_message_id") != pl.col("rejected_message_id"))
        .with_columns(
            pl.min_horizontal("chosen_t", "rejected_t").alias("earlier_t"),
            pl.max_horizontal("chosen_t", "rejected_t").alias("later_t"),
            pl.min_horizontal("chosen_prior", "rejected_prior").alias("evidence"),
            (pl.col("chosen_t") - pl.col("rejected_t")).abs().alias("gap_h"),
        )
        .filter(pl.col("evidence") >= rules.min_evidence)
        .with_columns(_split(rules).alias("split"))
        .filter(pl.col("split").is_not_null())
    )
    return (
        pairs.sort("customer_id", "gap_h", "earlier_t", "chosen_message_id", "rejected_message_id")
        .group_by("customer_id", "split", maintain_order=True)
        .head(rules.max_pairs)
        .with_columns(floor_to_step(pl.col("earlier_t"), rules.snapshot_step_h).alias("snapshot_t"))
        .select(
            "customer_id",
            "chosen_message_id",
            "chosen_t",
            "rejected_message_id",
            "rejected_t",
            "earlier_t",
            "snapshot_t",
            "evidence",
            "split",
        )
        .sort("snapshot_t", "customer_id", "earlier_t", "chosen_message_id", "rejected_message_id")
    )


def _split(rules: PairRules) -> pl.Expr:
    """Held-out customers first; then train (windows closed before the cut-off) or eval (from
    the cut-off on); a pair straddling the cut-off belongs to neither (null)."""
    if rules.cutoff_h is None or not math.isfinite(rules.cutoff_h):
        by_time = pl.lit("train")
    else:
        by_time = (
            pl.when(pl.col("later_t") + rules.window_h < rules.cutoff_h)
            .then(pl.lit("train"))
            .when(pl.col("earlier_t") >= rules.cutoff_h)
            .then(pl.lit("eval"))
            .otherwise(pl.lit(None, dtype=pl.Utf8))
        )
    if rules.holdout_percent <= 0:
        return by_time
    return (
        pl.when(held_out(pl.col("customer_id"), rules.holdout_percent))
        .then(pl.lit("holdout"))
        .otherwise(by_time)
    )
