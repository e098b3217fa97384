"""The per-customer pass: a customer's memory from their own events and the population.

Nothing here is fitted across customers. Every step groups by customer (sorted searches, sums
in a content-defined order, sparse rows), and the population supplies everything that needs
more than one customer, so a customer's rows are the same whoever else is in the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse

from memory.scoring import associative, habituation, priming
from memory.scoring.baseline import apply_baseline, baseline_counts
from memory.scoring.frames import EngineConfig, normalise_events
from memory.scoring.model import MemoryState
from memory.scoring.outcomes import send_outcomes
from memory.scoring.population import Population


@dataclass
class Observed:
    """Hold what a customer's own events say, before any population statistic is applied."""

    n_customers: int
    outcomes: pl.DataFrame  # every send with its outcome (send_outcomes)
    sends: pl.DataFrame  # sends of known messages
    resolved: pl.DataFrame  # of those, the ones whose window closed before the horizon
    counts: pl.DataFrame  # baseline_counts
    label_counts: pl.DataFrame  # customer_label_counts of the resolved sends
    actions: pl.DataFrame  # priming action instances


@dataclass
class CustomerPass:
    """Hold the state to score with and the frames of one per-customer pass."""

    state: MemoryState
    observed: Observed
    baselines: pl.DataFrame
    signals: pl.DataFrame  # customer, signals (only customers with recent priming actions)


def customer_count(events: pl.DataFrame, traits: pl.DataFrame | None) -> int:
    """Return n for the dense customer index 0..n-1 covered by the events and traits."""
    last = events["customer"].max() if events.height else -1
    if traits is not None and traits.height:
        last = max(last, traits["customer"].max())
    return int(last) + 1


def prepare_events(events: pl.DataFrame, horizon: float) -> pl.DataFrame:
    """Return the contract's columns of the events strictly before the horizon."""
    return normalise_events(events).filter(pl.col("t") < horizon)


def observe(
    events: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
    n_customers: int,
    incidence: sparse.csr_matrix,
    first_event_t: float | None,
) -> Observed:
    """Read outcomes, baseline counts, label counts and priming actions from the events."""
    outcomes = send_outcomes(events, config, horizon)
    n_messages = incidence.shape[0]
    # A message the population does not know (created after it was fitted) cannot be scored.
    sends = outcomes.filter(pl.col("message").is_not_null() & (pl.col("message") < n_messages))
    resolved = sends.filter(pl.col("resolved"))
    counts = baseline_counts(events, outcomes, config, horizon, n_customers, first_event_t)
    label_counts = associative.customer_label_counts(
        resolved, None, None, config, horizon, incidence=incidence
    )
    actions = priming.action_instances(events, config)
    return Observed(
        n_customers=n_customers,
        outcomes=outcomes,
        sends=sends,
        resolved=resolved,
        counts=counts,
        label_counts=label_counts,
        actions=actions,
    )


def customer_pass(
    observed: Observed,
    population: Population,
    horizon: float,
    traits: pl.DataFrame | None = None,
    *,
    with_propensity: bool = True,
    with_signals: bool = True,
) -> CustomerPass:
    """Apply the population's statistics to what the customers' own events say."""
    config = population.config
    n_customers = observed.n_customers
    baselines = apply_baseline(observed.counts, population.baseline, config, traits)
    baseline_rate = baselines["baseline_rate"].to_numpy()
    weights = associative.label_posteriors(
        observed.label_counts,
        population.label_priors,
        baseline_rate,
        config,
        with_propensity=with_propensity,
    )
    association = sparse.csr_matrix(
        (
            weights["association"].to_numpy(),
            (weights["customer"].to_numpy(), weights["label_id"].to_numpy()),
        ),
        shape=(n_customers, population.catalogue.height),
    )
    engagement = engagement_matrix(observed, population, n_customers)
    exposure = habituation.exposure_matrix(
        observed.sends, n_customers, population.n_messages, config.habituation_tau_h, horizon
    )
    primed = priming.primed_scores(
        observed.actions, population.priming, config, horizon, n_customers
    )
    signals = (
        priming.primed_signals(observed.actions, population.priming, config, horizon)
        if with_signals
        else None
    )
    state = MemoryState(
        horizon=horizon,
        config=config,
        baseline_rate=baseline_rate,
        frequency_rate_h=baselines["frequency_rate_h"].to_numpy(),
        segment_rate_h=baselines["prior_rate_h"].to_numpy(),
        hours_since_goal=baselines["hours_since_goal"].fill_null(np.nan).to_numpy(),
        message_rate=population.message_rate,
        association=association,
        engagement=engagement,
        message_labels=population.label_matrix,
        exposure=exposure,
        similarity=population.similarity,
        primed=primed,
        weights=weights,
        label_priors=population.label_priors,
        pooled_baseline_rate=population.pooled_baseline_rate,
        pooled_frequency_rate_h=population.pooled_frequency_rate_h,
        pooled_rate_h=population.baseline.pooled_rate_h,
    )
    return CustomerPass(state=state, observed=observed, baselines=baselines, signals=signals)


def engagement_matrix(
    observed: Observed, population: Population, n_customers: int
) -> sparse.csr_matrix:
    """Return customers x labels: log(posterior open rate / prior open rate) of the sends of each
    label, the prior being the customer's usual open rate times the label's population lift.

    Opens come far more often than goals, so they tell a customer's taste sooner; the scoring
    model weighs this against the goal association on replayed history (0 where opens are not
    recorded, or for a population stored before this memory existed).
    """
    shape = (n_customers, population.catalogue.height)
    if population.engagement_priors.height == 0:
        return sparse.csr_matrix(shape)
    sends, opens = associative.open_totals(observed.resolved, n_customers)
    customer, label_id, engagement = associative.label_associations(
        associative.engagement_counts(observed.label_counts),
        population.engagement_priors,
        associative.open_baseline(sends, opens, population.open_prior),
    )
    return sparse.csr_matrix((engagement, (customer, label_id)), shape=shape)


def run_pass(
    events: pl.DataFrame,
    population: Population,
    horizon: float,
    traits: pl.DataFrame | None = None,
    *,
    with_propensity: bool = True,
    with_signals: bool = True,
) -> CustomerPass:
    """Return the per-customer pass over these events (only those before the horizon)."""
    if horizon < population.horizon:
        raise ValueError(
            f"horizon {horizon} is before the population's {population.horizon}: "
            "its statistics would leak later events"
        )
    before = prepare_events(events, horizon)
    observed = observe(
        before,
        population.config,
        horizon,
        customer_count(before, traits),
        population.incidence,
        population.baseline.first_event_t,
    )
    return customer_pass(
        observed,
        population,
        horizon,
        traits,
        with_propensity=with_propensity,
        with_signals=with_signals,
    )


def habituation_rows(passed: CustomerPass) -> pl.DataFrame:
    """Return customer, message, load, sends, last_sent_t for loads of at least MIN_LOAD."""
    state = passed.state
    loads = habituation.load_matrix(state.exposure, state.similarity)
    return habituation.habituation_frame(loads, passed.observed.sends)


def state_rows(passed: CustomerPass) -> pl.DataFrame:
    """Return one row per customer: primed_score, baseline_rate, the goal numbers the scoring
    model weighs (goal count, hours observed, hours since the last goal, the customer's and
    their segment's goal rate per hour) and the signals JSON."""
    state = passed.state
    counts = passed.observed.counts.select(
        "customer",
        pl.col("goals").cast(pl.Int64).alias("goal_count"),
        "observed_h",
        "hours_since_goal",
    )
    frame = pl.DataFrame(
        {
            "customer": np.arange(state.n_customers, dtype=np.int64),
            "primed_score": state.primed,
            "baseline_rate": state.baseline_rate,
            "frequency_rate_h": state.frequency_rate_h,
            "segment_rate_h": state.segment_rate_h,
        }
    ).join(counts, on="customer", how="left", maintain_order="left")
    frame = frame.with_columns(pl.col("goal_count").fill_null(0))
    if passed.signals is None:
        return frame.with_columns(pl.lit("[]").alias("signals"))
    return frame.join(
        passed.signals, on="customer", how="left", maintain_order="left"
    ).with_columns(pl.col("signals").fill_null("[]"))
