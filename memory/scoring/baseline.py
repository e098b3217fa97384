"""Each customer's own goal baseline: how often they reach the goal when nobody messages them.

The baseline rate is a Poisson rate per hour over the customer's *free* time (time outside every
send's attribution window), shrunk to a prior rate by a Gamma prior (Gamma-Poisson):
``rate = (shape + free_goals) / (shape / prior_rate + free_h)``. The prior rate is the
population's free rate, or a trait-segment rate from a Poisson regression when traits are given.
The Gamma ``shape`` comes from the method of moments on the customers' goal counts.

Split for sharding: ``baseline_counts`` is per customer (their own events only),
``fit_baseline_prior`` is population-level (pooled rates, Gamma shapes, trait bins and the
regression), and ``apply_baseline`` combines one customer's counts with the fitted prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sklearn.linear_model import PoissonRegressor

from memory.scoring.aggregate import group_sums
from memory.scoring.frames import EngineConfig
from memory.scoring.outcomes import last_time_before

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


def frequency_rates(
    goals: np.ndarray, observed_h: np.ndarray, prior_rate_h: np.ndarray, shape: float
) -> np.ndarray:
    """Return the Gamma-Poisson posterior mean goal rate per hour of each customer.

    ``(shape + goals) / (shape / prior_rate_h + observed_h)``: the customer's own goals over
    their observed hours, with ``shape`` pseudo-goals at their prior (segment) rate.
    """
    return (shape + goals) / (shape / prior_rate_h + observed_h)


def covered_hours(sends: pl.DataFrame, window: float, horizon: float) -> pl.DataFrame:
    """Return per customer the length of the union of windows [t, t + window) before horizon."""
    frame = sends.select("customer", "t").sort("customer", "t")
    # Sorted, a customer's previous send is the row before when it is theirs: a plain shift
    # (a shift over each customer's window cost 2.7 times as much).
    theirs = pl.col("customer") == pl.col("customer").shift(1)
    return (
        frame.with_columns(
            pl.when(theirs).then(pl.col("t").shift(1) + window).otherwise(-np.inf).alias("prev_end")
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


def date_as_year(day: pl.Expr | pl.Series) -> pl.Expr | pl.Series:
    """Read a date as a number for the trait bins: its year plus the day of the year / 366.

    A date trait (e.g. a membership start) segments best by when it fell, not as a category.
    """
    return day.dt.year().cast(pl.Float64) + day.dt.ordinal_day() / 366.0


@dataclass
class TraitEncoder:
    """Hold the population's trait bins: quantile edges per numeric column, top categories."""

    # One entry per used column: {"name", "kind": "numeric"|"categorical", "edges"|"categories",
    # "codes"}; codes are the bin codes seen in the population (-1 = unknown), one column each.
    columns: list[dict] = field(default_factory=list)

    @classmethod
    def fit(cls, traits: pl.DataFrame, n_customers: int, quantile_bins: int) -> TraitEncoder:
        """Choose the bins from the population's traits: quantiles of numbers, top categories."""
        dense = _dense_traits(traits, n_customers)
        columns = []
        for name in dense.columns:
            if name == "customer":
                continue
            series = dense[name]
            if series.dtype.is_numeric():
                values = series.cast(pl.Float64).to_numpy()
                known = ~np.isnan(values)
                if known.sum() == 0:
                    continue
                cuts = np.linspace(0, 1, quantile_bins + 1)[1:-1]
                edges = np.unique(np.quantile(values[known], cuts))
                column = {"name": name, "kind": "numeric", "edges": edges.tolist()}
            else:
                text = series.cast(pl.Utf8).fill_null("")
                top = text.value_counts(sort=True).head(TRAIT_MAX_CATEGORIES)[name].to_list()
                column = {"name": name, "kind": "categorical", "categories": sorted(top)}
            column["codes"] = np.unique(_trait_codes(series, column)).tolist()
            columns.append(column)
        return cls(columns)

    def design(self, traits: pl.DataFrame | None, n_customers: int) -> np.ndarray:
        """Return the one-hot matrix (customers x segments) of these bins; missing = unknown."""
        dense = _dense_traits(traits, n_customers)
        blocks = []
        for column in self.columns:
            if column["name"] in dense.columns:
                codes = _trait_codes(dense[column["name"]], column)
            else:
                codes = np.full(n_customers, -1, dtype=np.int64)
            blocks += [(codes == code).astype(np.float64) for code in column["codes"]]
        if not blocks:
            return np.zeros((n_customers, 0))
        return np.column_stack(blocks)


def _dense_traits(traits: pl.DataFrame | None, n_customers: int) -> pl.DataFrame:
    """Return one traits row per customer 0..n-1 (nulls where unknown)."""
    customers = pl.DataFrame({"customer": np.arange(n_customers, dtype=np.int64)})
    if traits is None:
        return customers
    return customers.join(
        traits.with_columns(pl.col("customer").cast(pl.Int64)).unique("customer", keep="first"),
        on="customer",
        how="left",
    ).sort("customer")


def _trait_codes(series: pl.Series, column: dict) -> np.ndarray:
    """Return each value's bin code under a fitted column (-1 for unknown or other)."""
    if column["kind"] == "numeric":
        if not series.dtype.is_numeric():
            series = series.cast(pl.Float64, strict=False)
        values = series.cast(pl.Float64).to_numpy()
        known = ~np.isnan(values)
        edges = np.asarray(column["edges"], dtype=np.float64)
        return np.where(known, np.searchsorted(edges, values, side="right"), -1).astype(np.int64)
    lookup = {value: index for index, value in enumerate(column["categories"])}
    text = series.cast(pl.Utf8).fill_null("")
    return text.replace_strict(lookup, default=-1, return_dtype=pl.Int64).to_numpy()


@dataclass
class BaselinePrior:
    """Hold the population side of the baseline: pooled rate, Gamma shapes, trait regression."""

    pooled_rate_h: float
    all_shape: float
    free_ratio: float
    free_shape: float
    # The workspace's first event (observe_from_first_event=False starts exposure there).
    first_event_t: float | None = None
    traits: TraitEncoder | None = None
    coefficients: np.ndarray | None = None  # Poisson regression on the trait design (log link)
    intercept: float = 0.0

    def prior_rates(self, design: np.ndarray | None) -> np.ndarray:
        """Return each customer's prior goal rate per hour: the population's or their segment's."""
        if self.coefficients is None or design is None:
            n = 0 if design is None else design.shape[0]
            return np.full(n, self.pooled_rate_h)
        predicted = np.exp(design @ self.coefficients + self.intercept)
        return np.clip(predicted, self.pooled_rate_h / 20, self.pooled_rate_h * 20)

    def segment_rates(self, traits: pl.DataFrame | None, n_customers: int) -> np.ndarray:
        """Return the prior goal rate per hour of customers 0..n-1 from their traits."""
        return self.prior_rates(_design(self, traits, n_customers))

    def to_dict(self) -> dict:
        """Return a JSON-safe dict (floats round-trip exactly through json)."""
        return {
            "pooled_rate_h": self.pooled_rate_h,
            "all_shape": self.all_shape,
            "free_ratio": self.free_ratio,
            "free_shape": self.free_shape,
            "first_event_t": self.first_event_t,
            "traits": None if self.traits is None else self.traits.columns,
            "coefficients": None if self.coefficients is None else self.coefficients.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict) -> BaselinePrior:
        """Rebuild from ``to_dict``."""
        coefficients = data["coefficients"]
        return cls(
            pooled_rate_h=data["pooled_rate_h"],
            all_shape=data["all_shape"],
            free_ratio=data["free_ratio"],
            free_shape=data["free_shape"],
            first_event_t=data["first_event_t"],
            traits=None if data["traits"] is None else TraitEncoder(data["traits"]),
            coefficients=None if coefficients is None else np.asarray(coefficients, np.float64),
            intercept=data["intercept"],
        )


def _pooled_rate(counts: np.ndarray, hours: np.ndarray) -> float:
    """Return total counts over total hours (0 without exposure)."""
    total = float(hours.sum())
    return float(counts.sum()) / total if total > 0 else 0.0


def baseline_counts(
    events: pl.DataFrame,
    sends: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
    n_customers: int,
    first_event_t: float | None = None,
) -> pl.DataFrame:
    """Return per customer (0..n-1) their observed and free hours and goals, from their events.

    ``first_event_t`` is where exposure starts when ``observe_from_first_event`` is off (the
    workspace's first event; a customer's own earlier event still counts).
    """
    window = config.attribution_window_h
    customers = pl.DataFrame({"customer": np.arange(n_customers, dtype=np.int64)})
    first = events.group_by("customer").agg(pl.col("t").min().alias("first_t"))
    if not config.observe_from_first_event and first_event_t is not None:
        first = first.with_columns(pl.min_horizontal("first_t", pl.lit(first_event_t)))
    goals = events.filter(pl.col("name") == config.goal_event).select("customer", "t")
    last_send = last_time_before(goals, sends, by=["customer"])
    goals = goals.with_columns(pl.Series("free", ~((goals["t"].to_numpy() - last_send) <= window)))
    goal_stats = goals.group_by("customer").agg(
        pl.len().alias("goals"),
        pl.col("free").sum().alias("free_goals"),
        pl.col("t").max().alias("last_goal_t"),
    )
    return (
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
        .sort("customer")
        .select("customer", "observed_h", "free_h", "goals", "free_goals", "hours_since_goal")
    )


def fit_baseline_prior(
    counts: pl.DataFrame,
    config: EngineConfig,
    traits: pl.DataFrame | None = None,
    first_event_t: float | None = None,
) -> BaselinePrior:
    """Fit the population side of the baseline from the customers' counts (and traits)."""
    n_customers = counts.height
    goals = counts["goals"].to_numpy()
    observed_h = counts["observed_h"].to_numpy()
    pooled = max(_pooled_rate(goals, observed_h), 1e-9)
    prior = BaselinePrior(pooled, config.baseline_shape_max, 1.0, config.baseline_shape_max)
    prior.first_event_t = first_event_t
    observed = observed_h > 0
    if traits is not None and observed.sum() >= 10 and goals.sum() > 0:
        encoder = TraitEncoder.fit(traits, n_customers, config.trait_quantile_bins)
        design = encoder.design(traits, n_customers)
        if design.shape[1]:
            regression = PoissonRegressor(alpha=1e-4, max_iter=300)
            regression.fit(
                design[observed],
                goals[observed] / observed_h[observed],
                sample_weight=observed_h[observed],
            )
            prior.traits = encoder
            prior.coefficients = np.asarray(regression.coef_, dtype=np.float64)
            prior.intercept = float(regression.intercept_)
    all_prior = prior.segment_rates(traits, n_customers)
    prior.all_shape = gamma_shape(
        goals, all_prior * observed_h, config.baseline_shape_min, config.baseline_shape_max
    )
    frequency = frequency_rates(goals, observed_h, all_prior, prior.all_shape)
    free_goals = counts["free_goals"].to_numpy()
    free_h = counts["free_h"].to_numpy()
    ratio = _pooled_rate(free_goals, free_h) / max(_pooled_rate(goals, observed_h), 1e-12)
    prior.free_ratio = ratio if ratio > 0 else 1.0
    prior.free_shape = gamma_shape(
        free_goals,
        frequency * prior.free_ratio * free_h,
        config.baseline_shape_min,
        config.baseline_shape_max,
    )
    return prior


def _design(
    prior: BaselinePrior, traits: pl.DataFrame | None, n_customers: int
) -> np.ndarray | None:
    """Return the trait design under the population's bins (None without a trait model)."""
    if prior.traits is None:
        return np.zeros((n_customers, 0))
    return prior.traits.design(traits, n_customers)


def apply_baseline(
    counts: pl.DataFrame,
    prior: BaselinePrior,
    config: EngineConfig,
    traits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return ``baseline_counts`` plus each customer's prior, baseline and frequency rates.

    Added columns: ``prior_rate_h``, ``baseline_rate_h``, ``baseline_rate`` (P(goal in a window)
    without a send), ``frequency_rate_h`` (all-time shrunk goal rate).
    """
    goals = counts["goals"].to_numpy()
    observed_h = counts["observed_h"].to_numpy()
    all_prior = prior.segment_rates(traits, counts.height)
    frequency = frequency_rates(goals, observed_h, all_prior, prior.all_shape)
    # The free-time rate is shrunk toward the customer's own overall rate, scaled by how the
    # population's free-time rate compares with its overall rate: free time is often scarce.
    shrink_to = frequency * prior.free_ratio
    free_goals = counts["free_goals"].to_numpy()
    free_h = counts["free_h"].to_numpy()
    rate = (prior.free_shape + free_goals) / (prior.free_shape / shrink_to + free_h)
    return counts.select(
        "customer",
        "observed_h",
        "free_h",
        "goals",
        "free_goals",
        pl.Series("prior_rate_h", all_prior),
        pl.Series("baseline_rate_h", rate),
        pl.Series("baseline_rate", -np.expm1(-rate * config.attribution_window_h)),
        pl.Series("frequency_rate_h", frequency),
        "hours_since_goal",
    )


def customer_baselines(
    events: pl.DataFrame,
    sends: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
    n_customers: int,
    traits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return one row per customer with baselines fitted and applied on these same customers."""
    first = float(events["t"].min()) if events.height else None
    counts = baseline_counts(events, sends, config, horizon, n_customers, first)
    prior = fit_baseline_prior(counts, config, traits, first)
    return apply_baseline(counts, prior, config, traits)
