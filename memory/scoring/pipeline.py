"""One entry point: events in, the three memories and a fitted scoring model out.

``compute_memory`` is the sharded split run on one frame: the population is fitted on every
customer, then every customer gets their memory from their own events and that population.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from memory.scoring import habituation
from memory.scoring.customers import customer_pass, habituation_rows, state_rows
from memory.scoring.frames import EngineConfig, normalise_events
from memory.scoring.model import ALL_FEATURES, MemoryState, ScoringModel
from memory.scoring.outcomes import events_before
from memory.scoring.population import Population, fit_model, fit_population_with_replay
from memory.scoring.sharded import rank_state, score_state

__all__ = ["MemoryResult", "compute_memory", "fit_model", "rank_messages", "score_candidates"]

WEIGHT_COLUMNS = [
    "customer",
    "label_set",
    "label",
    "alpha",
    "beta",
    "exposures",
    "conversions",
    "rate",
    "weight",
    "weight_low",
    "weight_high",
    "thompson_share",
    "evidence",
    "lift",
]


@dataclass
class MemoryResult:
    """Hold every derived frame of one recompute, the fitted model and the state to score with."""

    as_of: float
    weights: pl.DataFrame
    label_priors: pl.DataFrame
    baselines: pl.DataFrame
    habituation: pl.DataFrame
    habituation_curve: pl.DataFrame
    priming: pl.DataFrame
    customer_state: pl.DataFrame
    model: ScoringModel
    state: MemoryState
    messages: pl.DataFrame
    population: Population
    stats: dict[str, float] = field(default_factory=dict)
    # (features, outcomes) of the replayed slices, newest first: refit ablations without replaying.
    replay: list[tuple[dict[str, np.ndarray], np.ndarray]] = field(default_factory=list)


def compute_memory(
    events: pl.DataFrame,
    messages: pl.DataFrame,
    message_labels: pl.DataFrame,
    config: EngineConfig | None = None,
    as_of: float | None = None,
    *,
    traits: pl.DataFrame | None = None,
    similarity_fn: habituation.SimilarityFn | None = None,
    features: tuple[str, ...] = ALL_FEATURES,
) -> MemoryResult:
    """Compute weights, baselines, habituation, priming and the scoring model as of a time.

    Only events with t < as_of are used, and a send whose window ends at or after as_of has no
    outcome yet. Without as_of, every event is used and windows must end by the last event.
    """
    config = config or EngineConfig()
    before, horizon = events_before(normalise_events(events), as_of)
    population, replay, observed = fit_population_with_replay(
        events=before,
        messages=messages,
        message_labels=message_labels,
        config=config,
        horizon=horizon,
        traits=traits,
        similarity_fn=similarity_fn,
        features=features,
    )
    # The population was fitted on every customer, so their observations are reused as they are.
    passed = customer_pass(observed, population, horizon, traits)
    outcomes = observed.outcomes
    send_counts = outcomes.group_by("customer").agg(pl.len().cast(pl.Int64).alias("sends"))
    customer_state = (
        passed.baselines.select(
            "customer",
            "baseline_rate",
            "baseline_rate_h",
            "frequency_rate_h",
            "hours_since_goal",
            "goals",
        )
        .join(send_counts, on="customer", how="left")
        .with_columns(pl.col("sends").fill_null(0), pl.Series("primed_score", passed.state.primed))
        .sort("customer")
        .join(
            state_rows(passed).select("customer", "signals"),
            on="customer",
            how="left",
            maintain_order="left",
        )
    )
    return MemoryResult(
        as_of=horizon,
        weights=passed.state.weights.select(WEIGHT_COLUMNS),
        label_priors=population.label_priors,
        baselines=passed.baselines,
        habituation=habituation_rows(passed),
        habituation_curve=population.habituation_curve,
        priming=population.priming,
        customer_state=customer_state,
        model=population.model,
        state=passed.state,
        messages=population.messages,
        population=population,
        stats=population.stats,
        replay=replay,
    )


def score_candidates(result: MemoryResult, candidates: pl.DataFrame) -> pl.DataFrame:
    """Return candidates (customer, message) with p_goal, the features and their contributions."""
    return score_state(result.state, result.model, candidates)


def rank_messages(
    result: MemoryResult,
    customer: int,
    messages: list[int] | None = None,
    boosts: pl.DataFrame | None = None,
    *,
    explore: bool = False,
    seed: int = 0,
) -> pl.DataFrame:
    """Rank candidate messages for one customer, best first (see ``sharded.rank_state``)."""
    return rank_state(
        result.state,
        result.model,
        result.messages,
        customer,
        messages,
        boosts,
        explore=explore,
        seed=seed,
    )
