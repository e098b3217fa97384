"""Priming: actions after which the goal tends to follow within the priming horizon.

For each non-goal, non-send event type a, instances are the customer's actions (repeats of the
same action closer than the chain gap are one flow and count once). Each instance is compared
with matched control times of the *same customer* (drawn uniformly over their observed span,
seeded) that had no such action in the horizon before. With a/b the instances with/without a goal
in (t, t + h] and c/d the same for controls (all cells + 0.5):

    lift = (a / (a + b)) / (c / (c + d))
    OR = (a d) / (b c),  95% CI = exp(ln OR +- 1.96 sqrt(1/a + 1/b + 1/c + 1/d))

A customer's primed score is sum_k ln(lift_a_k) * 0.5 ** (age_k / priming half-life) over their
past actions of types whose CI lies above 1 and whose support reaches the minimum.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from memory.scoring.aggregate import group_sums
from memory.scoring.frames import EngineConfig
from memory.scoring.outcomes import last_time_before, next_time_after

Z_95 = 1.959963984540054
MAX_SIGNALS = 5
# A customer is primed now from this primed score up (the prompt's and the customer list's cut).
PRIMED_MIN_SCORE = 0.1
PRIMING_COLUMNS = {
    "event_name": pl.Utf8,
    "lift": pl.Float64,
    "odds_ratio": pl.Float64,
    "odds_ratio_low": pl.Float64,
    "odds_ratio_high": pl.Float64,
    "support": pl.Int64,
    "goal_rate": pl.Float64,
    "control_rate": pl.Float64,
    "controls": pl.Int64,
    "median_lead_h": pl.Float64,
    "primes": pl.Boolean,
    "lead_histogram": pl.List(pl.Int64),
}
# The lead times (action to goal, within the horizon) are counted in this many equal bins.
LEAD_BINS = 12


def odds_ratio(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Return (OR, low, high) with +0.5 on each cell and a 95% Wald interval on ln OR."""
    a, b, c, d = (np.asarray(x, dtype=np.float64) + 0.5 for x in (a, b, c, d))
    log_or = np.log(a * d / (b * c))
    half_width = Z_95 * np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return np.exp(log_or), np.exp(log_or - half_width), np.exp(log_or + half_width)


def risk_lift(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Return the ratio of goal rates, actions over controls, with +0.5 on each cell."""
    a, b, c, d = (np.asarray(x, dtype=np.float64) + 0.5 for x in (a, b, c, d))
    return (a / (a + b)) / (c / (c + d))


def action_instances(events: pl.DataFrame, config: EngineConfig) -> pl.DataFrame:
    """Return the non-goal, non-send actions with within-flow repeats dropped."""
    actions = events.filter(
        (pl.col("name") != config.goal_event) & (pl.col("name") != config.send_event)
    ).select("customer", "name", "t")
    names = actions["name"].unique().sort().to_list()
    codes = {name: code for code, name in enumerate(names)}
    coded = actions.with_columns(
        pl.col("name").replace_strict(codes, return_dtype=pl.Int64).alias("code")
    )
    if not codes:
        return coded
    # An integer code per name keeps the per-(customer, action) searches numeric and fast; one
    # integer key per (customer, action) sorts faster than the two columns.
    return (
        coded.with_columns((pl.col("customer") * len(codes) + pl.col("code")).alias("flow"))
        .sort("flow", "t")
        .filter(
            (pl.col("flow") != pl.col("flow").shift(1)).fill_null(True)
            | ((pl.col("t") - pl.col("t").shift(1)) >= config.priming_chain_gap_h)
        )
        .drop("flow")
    )


def priming_table(
    events: pl.DataFrame, actions: pl.DataFrame, config: EngineConfig, horizon: float
) -> pl.DataFrame:
    """Return one row per action type with lift, odds ratio and CI, support and lead time."""
    h = config.priming_horizon_h
    goals = events.filter(pl.col("name") == config.goal_event).select("customer", "t")
    resolved = actions.filter(pl.col("t") + h < horizon)
    if resolved.height == 0:
        return pl.DataFrame(schema=PRIMING_COLUMNS)
    next_goal = next_time_after(resolved, goals, by=["customer"])
    lead = next_goal - resolved["t"].to_numpy()
    instances = resolved.with_columns(
        pl.Series("hit", lead <= h), pl.Series("lead", np.where(lead <= h, lead, np.nan))
    )
    controls = matched_controls(events, actions, resolved, config, horizon)
    control_goal = next_time_after(controls, goals, by=["customer"]) - controls["t"].to_numpy()
    controls = controls.with_columns(pl.Series("hit", control_goal <= h))
    treated = instances.group_by("name").agg(
        pl.len().alias("support"),
        pl.col("hit").sum().alias("a"),
        pl.col("lead").drop_nans().median().alias("median_lead_h"),
    )
    untreated = controls.group_by("name").agg(
        pl.len().alias("controls"), pl.col("hit").sum().alias("c")
    )
    table = treated.join(untreated, on="name", how="left").with_columns(
        pl.col("controls").fill_null(0), pl.col("c").fill_null(0)
    )
    a = table["a"].to_numpy()
    b = table["support"].to_numpy() - a
    c = table["c"].to_numpy()
    d = table["controls"].to_numpy() - c
    leads = lead_histograms(instances, h)
    ratio, low, high = odds_ratio(a, b, c, d)
    lift = risk_lift(a, b, c, d)
    primes = (low > 1.0) & (table["support"].to_numpy() >= config.priming_min_support)
    return table.select(
        pl.col("name").alias("event_name"),
        pl.Series("lift", lift),
        pl.Series("odds_ratio", ratio),
        pl.Series("odds_ratio_low", low),
        pl.Series("odds_ratio_high", high),
        pl.col("support").cast(pl.Int64),
        pl.Series("goal_rate", (a + 0.5) / (a + b + 1.0)),
        pl.Series("control_rate", (c + 0.5) / (c + d + 1.0)),
        pl.col("controls").cast(pl.Int64),
        pl.col("median_lead_h").cast(pl.Float64),
        pl.Series("primes", primes),
        pl.Series(
            "lead_histogram",
            [leads.get(name, [0] * LEAD_BINS) for name in table["name"].to_list()],
            dtype=pl.List(pl.Int64),
        ),
    ).sort("event_name")


def lead_histograms(instances: pl.DataFrame, horizon_h: float) -> dict[str, list[int]]:
    """Return, per action, how many goals followed it in each of LEAD_BINS equal spans of the
    horizon (instances: name and lead, NaN when no goal came within the horizon)."""
    edges = np.linspace(0.0, horizon_h, LEAD_BINS + 1)
    hits = instances.filter(pl.col("lead").is_not_nan())
    return {
        name: np.histogram(group["lead"].to_numpy(), bins=edges)[0].astype(int).tolist()
        for (name,), group in hits.group_by("name")
    }


def matched_controls(
    events: pl.DataFrame,
    actions: pl.DataFrame,
    resolved: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
) -> pl.DataFrame:
    """Return control times of the same customers, without the same action in the horizon before."""
    h = config.priming_horizon_h
    span = events.group_by("customer").agg(pl.col("t").min().alias("first_t"))
    draws = config.priming_controls_per_action
    # In the actions' order (customer, code, t), so each seeded draw lands on the same row.
    matched = resolved.select("customer", "name", "code").join(
        span, on="customer", how="left", maintain_order="left"
    )
    repeated = pl.concat([matched] * draws)
    rng = np.random.default_rng(config.seed)
    first = repeated["first_t"].to_numpy()
    latest = horizon - h
    times = first + rng.random(repeated.height) * np.maximum(latest - first, 0.0)
    candidates = repeated.select("customer", "name", "code").with_columns(pl.Series("t", times))
    candidates = candidates.filter(pl.Series(times < latest))
    previous = last_time_before(candidates, actions, by=["customer", "code"], inclusive=True)
    recent = (candidates["t"].to_numpy() - previous) <= h
    return candidates.filter(pl.Series(~recent))


def primed_scores(
    actions: pl.DataFrame,
    table: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
    n_customers: int,
) -> np.ndarray:
    """Return each customer's primed score at the horizon (0 without priming actions)."""
    scores = np.zeros(n_customers)
    if table.height == 0 or actions.height == 0:
        return scores
    weights = table.filter(pl.col("primes")).select(
        pl.col("event_name").alias("name"), pl.col("lift").log().alias("w")
    )
    scored = actions.join(weights, on="name").with_columns(
        (pl.col("w") * 0.5 ** ((pl.lit(horizon) - pl.col("t")) / config.priming_half_life_h)).alias(
            "s"
        )
    )
    summed = group_sums(scored, ["customer"], ["s"])
    np.add.at(scores, summed["customer"].to_numpy(), summed["s"].to_numpy())
    return scores


def primed_signals(
    actions: pl.DataFrame, table: pl.DataFrame, config: EngineConfig, horizon: float
) -> pl.DataFrame:
    """Return per customer a JSON list of their recent priming actions, most recent first.

    Recent means within the priming horizon before ``horizon`` (the action can still prime a
    goal); only action types that count for the primed score; at most ``MAX_SIGNALS``. Columns:
    ``customer``, ``signals`` (e.g. ``[{"event":"Product Viewed","hours_ago":2.0,"lift":1.8}]``).
    """
    empty = pl.DataFrame(schema={"customer": pl.Int64, "signals": pl.Utf8})
    if table.height == 0 or actions.height == 0:
        return empty
    lifts = table.filter(pl.col("primes")).select(pl.col("event_name").alias("name"), "lift")
    recent = actions.filter(pl.col("t") >= horizon - config.priming_horizon_h).join(
        lifts, on="name"
    )
    if recent.height == 0:
        return empty
    return (
        recent.sort(["customer", "t", "name"], descending=[False, True, False])
        .group_by("customer", maintain_order=True)
        .head(MAX_SIGNALS)
        .select(
            "customer",
            pl.struct(
                pl.col("name").alias("event"),
                (pl.lit(horizon) - pl.col("t")).round(2).alias("hours_ago"),
                pl.col("lift").round(3),
            )
            .struct.json_encode()
            .alias("signal"),
        )
        .group_by("customer", maintain_order=True)
        .agg(pl.col("signal").str.join(","))
        .select("customer", pl.format("[{}]", "signal").alias("signals"))
    )
