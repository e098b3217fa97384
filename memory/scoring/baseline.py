"""Each customer's own goal baseline: how often they reach the goal when nobody messages them.

The baseline rate is a Poisson rate per hour over the customer's *free* time (time outside every
send's attribution window), shrunk to a prior rate by a Gamma prior (Gamma-Poisson):
``rate = (shape + free_goals) / (shape / prior_rate + free_h)``. The prior rate is the
population's free rate, or a trait-segment rate from a Poisson regression when traits are given.
The Gamma ``shape`` comes from the method of moments on the customers' goal counts.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.linear_model import PoissonRegressor

from memory.scoring.aggregate import group_sums
from memory.scoring.frames import EngineConfig
from memory.scoring.outcomes import last_time_before

TRAIT_QUANTILE_BINS = 5
TRAIT_MAX_CATEGORIES = 20


def gamma_shape(counts: np.ndarray, expected: np.ndarray, lower: float, upper: float) -> float:
    """Return the Gamma prior shape matching the counts' overdispersion (method of moments).

    With count ~ Poisson(rate * T) and rate ~ Gamma(shape, shape / prior), the variance of a
    count is mu + mu^2 / shape, so shape = sum(mu^2) / sum((count - mu)^2 - mu).
    """
    if counts.size == 0:
        return upper
    excess = float(np.sum((counts - expected) ** 2 - expected))
    if excess <= 0.0:
        return upper
    return float(np.clip(np.sum(expected**2) / excess, lower, upper))


def covered_hours(sends: pl.DataFrame, window: float, horizon: float) -> pl.DataFrame:
    """Return per customer the length of the union of windows [t, t + window) before horizon."""
    frame = sends.select("customer", "t").sort("customer", "t")
    return (
        frame.with_columns(
            (pl.col("t").shift(1).over("customer") + window).fill_null(-np.inf).alias("prev_end")
        )
        .with_columns(
            (
                pl.min_horizontal(pl.col("t") + window, pl.lit(horizon))
                - pl.max_horizontal("t", "prev_end")
            )
            .clip(lower_bound=0.0)
            .alias("covered")
        )
        .pipe(group_sums, ["customer"], ["covered"])
        .rename({"covered": "covered_h"})
    )


def trait_design(traits: pl.DataFrame, n_customers: int) -> np.ndarray:
    """Return a one-hot matrix (customers x segments) of binned numeric and categorical traits."""
    dense = pl.DataFrame({"customer": np.arange(n_customers, dtype=np.int64)}).join(
        traits.unique("customer", keep="first"), on="customer", how="left"
    )
    blocks: list[np.ndarray] = []
    for column in dense.columns:
        if column == "customer":
            continue
        series = dense[column]
        if series.dtype.is_numeric():
            values = series.cast(pl.Float64).to_numpy()
            known = ~np.isnan(values)
            if known.sum() == 0:
                continue
            edges = np.unique(
                np.quantile(values[known], np.linspace(0, 1, TRAIT_QUANTILE_BINS + 1)[1:-1])
            )
            codes = np.where(known, np.searchsorted(edges, values, side="right"), -1)
        else:
            text = series.cast(pl.Utf8).fill_null("")
            top = text.value_counts(sort=True).head(TRAIT_MAX_CATEGORIES)[column].to_list()
            lookup = {value: index for index, value in enumerate(sorted(top))}
            codes = text.replace_strict(lookup, default=-1, return_dtype=pl.Int64).to_numpy()
        for code in np.unique(codes):
            blocks.append((codes == code).astype(np.float64))
    if not blocks:
        return np.zeros((n_customers, 0))
    return np.column_stack(blocks)


def _pooled_rate(counts: np.ndarray, hours: np.ndarray) -> float:
    """Return total counts over total hours (0 without exposure)."""
    total = float(hours.sum())
    return float(counts.sum()) / total if total > 0 else 0.0


def prior_rates(counts: np.ndarray, hours: np.ndarray, design: np.ndarray | None) -> np.ndarray:
    """Return each customer's prior goal rate per hour: the population's, or their segment's."""
    total_hours = float(hours.sum())
    pooled = float(counts.sum()) / total_hours if total_hours > 0 else 0.0
    pooled = max(pooled, 1e-9)
    observed = hours > 0
    if design is None or design.shape[1] == 0 or observed.sum() < 10 or counts.sum() == 0:
        return np.full(counts.shape, pooled)
    regression = PoissonRegressor(alpha=1e-4, max_iter=300)
    regression.fit(
        design[observed], counts[observed] / hours[observed], sample_weight=hours[observed]
    )
    return np.clip(regression.predict(design), pooled / 20, pooled * 20)


def customer_baselines(
    events: pl.DataFrame,
    sends: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
    n_customers: int,
    traits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return one row per customer (0..n-1) with their baseline, frequency and recency.

    Columns: ``customer``, ``observed_h``, ``free_h``, ``goals``, ``free_goals``, ``prior_rate_h``,
    ``baseline_rate_h``, ``baseline_rate`` (P(goal in a window) without a send),
    ``frequency_rate_h`` (all-time shrunk goal rate), ``hours_since_goal`` (null if none).
    """
    window = config.attribution_window_h
    customers = pl.DataFrame({"customer": np.arange(n_customers, dtype=np.int64)})
    first = events.group_by("customer").agg(pl.col("t").min().alias("first_t"))
    if not config.observe_from_first_event and events.height:
        first = first.with_columns(pl.lit(float(events["t"].min())).alias("first_t"))
    goals = events.filter(pl.col("name") == config.goal_event).select("customer", "t")
    last_send = last_time_before(goals, sends, by=["customer"])
    goals = goals.with_columns(pl.Series("free", ~((goals["t"].to_numpy() - last_send) <= window)))
    goal_stats = goals.group_by("customer").agg(
        pl.len().alias("goals"),
        pl.col("free").sum().alias("free_goals"),
        pl.col("t").max().alias("last_goal_t"),
    )
    frame = (
        customers.join(first, on="customer", how="left")
        .join(goal_stats, on="customer", how="left")
        .join(covered_hours(sends, window, horizon), on="customer", how="left")
        .with_columns(
            (pl.lit(horizon) - pl.col("first_t"))
            .clip(lower_bound=0.0)
            .fill_null(0.0)
            .alias("observed_h"),
            pl.col("goals").fill_null(0).cast(pl.Float64),
            pl.col("free_goals").fill_null(0).cast(pl.Float64),
            pl.col("covered_h").fill_null(0.0),
        )
        .with_columns(
            (pl.col("observed_h") - pl.col("covered_h")).clip(lower_bound=0.0).alias("free_h"),
            (pl.lit(horizon) - pl.col("last_goal_t")).alias("hours_since_goal"),
        )
    )
    frame = frame.sort("customer")
    design = trait_design(traits, n_customers) if traits is not None else None
    all_goals = frame["goals"].to_numpy()
    observed_h = frame["observed_h"].to_numpy()
    all_prior = prior_rates(all_goals, observed_h, design)
    all_shape = gamma_shape(
        all_goals, all_prior * observed_h, config.baseline_shape_min, config.baseline_shape_max
    )
    frequency = (all_shape + all_goals) / (all_shape / all_prior + observed_h)
    # The free-time rate is shrunk toward the customer's own overall rate, scaled by how the
    # population's free-time rate compares with its overall rate: free time is often scarce.
    free_goals = frame["free_goals"].to_numpy()
    free_h = frame["free_h"].to_numpy()
    free_ratio = _pooled_rate(free_goals, free_h) / max(_pooled_rate(all_goals, observed_h), 1e-12)
    prior = frequency * (free_ratio if free_ratio > 0 else 1.0)
    shape = gamma_shape(
        free_goals, prior * free_h, config.baseline_shape_min, config.baseline_shape_max
    )
    rate = (shape + free_goals) / (shape / prior + free_h)
    return frame.select(
        "customer",
        "observed_h",
        "free_h",
        "goals",
        "free_goals",
        pl.Series("prior_rate_h", all_prior),
        pl.Series("baseline_rate_h", rate),
        pl.Series("baseline_rate", -np.expm1(-rate * window)),
        pl.Series("frequency_rate_h", frequency),
        "hours_since_goal",
    )
