"""Sharded recompute: population statistics once, then customers by bucket on any worker.

``fit_population`` reads a sample of customers (everyone in a small workspace) and fits what
depends on more than one customer. ``customer_memory`` computes a shard's customers from their
own events and the population only, so a customer's rows are the same in any shard, alone, or
with everyone. ``compute_memory`` is these two on one frame.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from memory.scoring.customers import CustomerPass, habituation_rows, run_pass, state_rows
from memory.scoring.model import (
    MemoryState,
    ScoringModel,
    candidate_features,
    predict,
    thompson_association,
)
from memory.scoring.population import Population, PopulationFit, fit_population, fit_statistics

__all__ = [
    "Population",
    "PopulationFit",
    "customer_memory",
    "fit_population",
    "fit_statistics",
    "rank_state",
    "rank_with_population",
    "score_state",
    "score_with_population",
]

WEIGHT_COLUMNS = [
    "customer",
    "label_set",
    "label",
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
]


STATE_COLUMNS = [
    "customer",
    "primed_score",
    "baseline_rate",
    "goal_count",
    "observed_h",
    "hours_since_goal",
    "frequency_rate_h",
    "segment_rate_h",
    "signals",
]


def memory_frames(passed: CustomerPass) -> dict[str, pl.DataFrame]:
    """Return the weights, habituation and state frames of a per-customer pass."""
    return {
        "weights": passed.state.weights.select(WEIGHT_COLUMNS),
        "habituation": habituation_rows(passed).select(
            "customer", "message", "load", "sends", "last_sent_t"
        ),
        "state": state_rows(passed).select(STATE_COLUMNS),
    }


def customer_memory(
    *,
    events: pl.DataFrame,
    population: Population,
    horizon: float,
    traits: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Return these customers' weights, habituation loads and state from their own events.

    ``events`` use a dense ``customer`` 0..n-1 for this shard and the population's message
    indices; only events strictly before ``horizon`` are read. One state row per customer.
    """
    return memory_frames(run_pass(events, population, horizon, traits))


def score_state(state: MemoryState, model: ScoringModel, candidates: pl.DataFrame) -> pl.DataFrame:
    """Return candidates (customer, message) with p_goal, the features and their contributions."""
    customers = candidates["customer"].cast(pl.Int64).to_numpy()
    messages = candidates["message"].cast(pl.Int64).to_numpy()
    features = candidate_features(state, customers, messages)
    p, contributions = predict(model, features)
    return pl.concat(
        [
            candidates.select(pl.col("customer").cast(pl.Int64), pl.col("message").cast(pl.Int64)),
            pl.DataFrame({"p_goal": p, **{f"feature_{k}": v for k, v in features.items()}}),
            contributions,
        ],
        how="horizontal",
    )


def rank_state(
    state: MemoryState,
    model: ScoringModel,
    message_keys: pl.DataFrame,
    customer: int,
    messages: list[int] | None = None,
    boosts: pl.DataFrame | None = None,
    *,
    explore: bool = False,
    seed: int = 0,
) -> pl.DataFrame:
    """Rank candidate messages for one customer, best first, with each feature's contribution
    to logit p (``contribution_*``, as ``predict`` gives them).

    score = logit(p_goal) + ln(boost_odds) * mean boost of the message's labels, where ``boosts``
    has columns label_set, label, boost in [-1, 1] (missing labels count 0). With ``explore``,
    the association comes from one Thompson draw of the customer's label posteriors (seeded).
    """
    candidates = np.asarray(
        messages if messages is not None else message_keys["message"].to_list(), dtype=np.int64
    )
    customers = np.full(candidates.size, customer, dtype=np.int64)
    override = thompson_association(state, customer, seed) if explore else None
    features = candidate_features(state, customers, candidates, association_override=override)
    p, contributions = predict(model, features)
    boost = np.zeros(candidates.size)
    if boosts is not None and boosts.height:
        catalogue = state.label_priors.select("label_id", "label_set", "label")
        per_label = np.zeros(catalogue.height)
        matched = catalogue.join(
            boosts.select("label_set", "label", pl.col("boost").clip(-1.0, 1.0)),
            on=["label_set", "label"],
        )
        per_label[matched["label_id"].to_numpy()] = matched["boost"].to_numpy()
        known = candidates < state.n_messages
        boost[known] = state.message_labels[candidates[known]] @ per_label
    score = np.log(p / (1 - p)) + np.log(state.config.boost_odds) * boost
    return (
        pl.DataFrame({"message": candidates, "p_goal": p, "boost": boost, "score": score})
        .hstack(contributions)
        .join(message_keys.select("message", "key"), on="message", how="left")
        .sort("score", "message", descending=[True, False])
        .with_row_index("rank", offset=1)
    )


def _model(population: Population) -> ScoringModel:
    if population.model is None:
        raise ValueError("the population has no fitted scoring model")
    return population.model


def score_with_population(
    *,
    events: pl.DataFrame,
    population: Population,
    horizon: float,
    candidates: pl.DataFrame,
    traits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Score (customer, message) candidates from these customers' events and the population."""
    passed = run_pass(
        events, population, horizon, traits, with_propensity=False, with_signals=False
    )
    return score_state(passed.state, _model(population), candidates)


def rank_with_population(
    *,
    events: pl.DataFrame,
    population: Population,
    horizon: float,
    customer: int,
    boosts: pl.DataFrame | None = None,
    explore: bool = False,
    seed: int = 0,
    messages: list[int] | None = None,
    traits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Rank messages for one customer from their events and the population, best first."""
    passed = run_pass(
        events, population, horizon, traits, with_propensity=False, with_signals=False
    )
    return rank_state(
        passed.state,
        _model(population),
        population.messages,
        customer,
        messages,
        boosts,
        explore=explore,
        seed=seed,
    )
