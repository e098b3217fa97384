"""Input contract of the scoring engine and its configuration.

Frames in (polars):

- ``events``: ``customer`` Int64 (dense index 0..n-1), ``name`` Utf8 (event name), ``t`` Float64
  (hours since any origin), ``message`` Int64 (dense message index, null if none), ``revenue``
  Float64 (nullable). Not necessarily sorted.
- ``messages``: ``message`` Int64 (index), ``key`` Utf8, ``text`` Utf8.
- ``message_labels``: ``message`` Int64, ``label_set`` Utf8 (slug), ``label`` Utf8 (slug); many
  rows per message. A message with two labels in one set credits both (see ``docs/memory.md``).
- ``traits`` (optional): ``customer`` Int64 plus any numeric or categorical columns; used only to
  build trait-segment priors for the baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

# What the engine keeps per customer and label: the posterior and its summaries. The engine keys
# the rows by dense customer and (label_set, label); the derived table by customer and label ids.
WEIGHT_COLUMNS = (
    "alpha",
    "beta",
    "exposures",
    "conversions",
    "weight",
    "weight_low",
    "weight_high",
    "thompson_share",
    "evidence",
    "lift",
)

EVENTS_SCHEMA = {
    "customer": pl.Int64,
    "name": pl.Utf8,
    "t": pl.Float64,
    "message": pl.Int64,
    "revenue": pl.Float64,
}
MESSAGES_SCHEMA = {"message": pl.Int64, "key": pl.Utf8, "text": pl.Utf8}
LABELS_SCHEMA = {"message": pl.Int64, "label_set": pl.Utf8, "label": pl.Utf8}


@dataclass(frozen=True)
class EngineConfig:
    """Hold the event names, windows and hyperparameters of the memory engine."""

    goal_event: str = "Order Completed"
    send_event: str = "Message Sent"
    open_event: str = "Message Opened"
    # A send's outcome is whether the goal happens in (t_send, t_send + window].
    attribution_window_h: float = 72.0
    # "all": a goal counts for every send whose window contains it; "last": only the latest send.
    attribution: str = "all"
    habituation_half_life_h: float = 168.0
    priming_horizon_h: float = 72.0
    # How fast a primed action's pull fades for the per-customer primed score.
    priming_half_life_h: float = 24.0
    # Repeats of the same action by the same customer closer than this are one flow: count once.
    priming_chain_gap_h: float = 1.0
    # Matched control times drawn per action instance (same customer, no such action before).
    priming_controls_per_action: int = 2
    # An action counts towards the primed score only if its odds-ratio CI lies above 1.
    priming_min_support: int = 20
    # Old outcomes weigh less in the label posteriors: gamma = 0.5 ** (later sends to the
    # customer / half-life in sends), so newer evidence replaces older, while a customer who
    # hears from you rarely keeps theirs; times 0.5 ** (age / half-life in hours), off (inf) by
    # default: wall-clock decay threw away most of a rarely-contacted customer's evidence.
    association_half_life_sends: float = 25.0
    association_half_life_h: float = math.inf
    # Bounds for the empirical-Bayes prior strength kappa = alpha0 + beta0.
    prior_strength_min: float = 2.0
    prior_strength_max: float = 500.0
    # Bounds for the Gamma shape of the baseline rate prior (pseudo goal count).
    baseline_shape_min: float = 0.5
    baseline_shape_max: float = 100.0
    # Numeric traits fall in this many quantile bins (plus unknown) for the segment prior.
    trait_quantile_bins: int = 10
    # Baseline exposure starts at the customer's first event; else at the workspace's first event.
    observe_from_first_event: bool = True
    # Shrinkage (pseudo sends) of each message's population response rate toward the pooled rate.
    message_rate_prior_sends: float = 20.0
    propensity_draws: int = 256
    interval_level: float = 0.90
    similarity_neighbours: int = 20
    # Replayed cut-offs for fitting: as_of - (j + 1) * step for j < snapshots; the newest
    # snapshot calibrates (Platt), the older ones fit the coefficients. A step of one window
    # keeps each replayed send's memory at most a window older than the send, as when scoring.
    training_snapshots: int = 6
    training_step_h: float = 72.0
    # False: fit the coefficients on every replayed slice and calibrate on the newest one.
    calibrate_on_held_out: bool = False
    max_training_customers: int = 20_000
    max_curve_sends: int = 200_000
    model_l2: float = 1.0
    # A marketer boost b in [-1, 1] multiplies a message's ranking odds by boost_odds ** mean(b).
    boost_odds: float = 3.0
    seed: int = 0

    @property
    def habituation_tau_h(self) -> float:
        """Return the e-folding time of the habituation load (half-life / ln 2)."""
        return self.habituation_half_life_h / math.log(2.0)


def empty_events() -> pl.DataFrame:
    """Return an empty events frame with the contract's schema."""
    return pl.DataFrame(schema=EVENTS_SCHEMA)


def normalise_events(events: pl.DataFrame) -> pl.DataFrame:
    """Cast the events frame to the contract's columns and types."""
    missing = [c for c in ("customer", "name", "t") if c not in events.columns]
    if missing:
        raise ValueError(f"events frame lacks columns {missing}")
    frame = events
    for column in ("message", "revenue"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None).alias(column))
    return frame.select([pl.col(c).cast(dtype) for c, dtype in EVENTS_SCHEMA.items()])


def normalise_messages(messages: pl.DataFrame) -> pl.DataFrame:
    """Cast the messages frame to the contract's columns and types, sorted by index."""
    frame = messages
    if "key" not in frame.columns:
        frame = frame.with_columns(pl.col("message").cast(pl.Utf8).alias("key"))
    if "text" not in frame.columns:
        frame = frame.with_columns(pl.col("key").alias("text"))
    frame = frame.select([pl.col(c).cast(dtype) for c, dtype in MESSAGES_SCHEMA.items()])
    return frame.with_columns(pl.col("text").fill_null("")).sort("message")


def normalise_labels(message_labels: pl.DataFrame) -> pl.DataFrame:
    """Cast the message-label frame to the contract's columns and drop duplicate rows."""
    frame = message_labels.select([pl.col(c).cast(d) for c, d in LABELS_SCHEMA.items()])
    return frame.unique().sort("message", "label_set", "label")
