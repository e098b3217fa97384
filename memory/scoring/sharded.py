"""Sharded recompute: population statistics once, then customers by bucket on any worker.

``fit_population`` reads a sample of customers (everyone in a small workspace) and fits what
depends on more than one customer. ``customer_memory`` computes a shard's customers from their
own events and the population only, so a customer's rows are the same in any shard, alone, or
with everyone. ``compute_memory`` is these two on one frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from memory.scoring.customers import CustomerPass, habituation_rows, run_pass, state_rows
from memory.scoring.frames import WEIGHT_COLUMNS
from memory.scoring.model import (
    MemoryState,
    ScoringModel,
    candidate_features,
    predict,
    thompson_association,
)
from memory.scoring.next_best import message_boosts, next_best_rows
from memory.scoring.population import Population
from memory.scoring.population_fit import PopulationFit, fit_population, fit_statistics

__all__ = [
    "NextBestAsked",
    "NextBestLater",
    "Population",
    "PopulationFit",
    "cold_start_next_best",
    "customer_memory",
    "customer_memory_staged",
    "fit_population",
    "fit_statistics",
    "rank_state",
    "rank_with_population",
    "score_state",
    "score_with_population",
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
        "weights": passed.state.weights.select("customer", "label_set", "label", *WEIGHT_COLUMNS),
        "habituation": habituation_rows(passed).select(
            "customer", "message", "load", "sends", "last_sent_t"
        ),
        "state": state_rows(passed).select(STATE_COLUMNS),
    }


@dataclass(frozen=True)
class NextBestAsked:
    """What the recompute's stored next best lists rank: candidates, boosts, how many kept."""

    candidates: np.ndarray  # dense message indices of the active messages
    boosts: pl.DataFrame | None  # label_set, label, boost of the active labels
    top: int
    # Candidates kept for every customer wherever they rank: the live campaigns' messages.
    always: np.ndarray | None = None


@dataclass
class NextBestLater:
    """A shard's state kept to rank its next best lists once the population's model is fitted
    (a streamed run computes shards before the model; decision 0106)."""

    state: MemoryState
    asked: NextBestAsked

    def rows(self, model: ScoringModel) -> pl.DataFrame:
        """Return the shard's next best rows (``next_best_rows``) with the fitted model."""
        asked = self.asked
        return next_best_rows(
            self.state, model, asked.candidates, asked.boosts, asked.top, always=asked.always
        )


def customer_memory_staged(
    *,
    events: pl.DataFrame,
    population: Population,
    horizon: float,
    traits: pl.DataFrame | None = None,
    next_best: NextBestAsked | None = None,
) -> tuple[dict[str, pl.DataFrame], NextBestLater | None]:
    """Return ``customer_memory``'s frames; when next best lists are asked for but the
    population has no model yet, without them and with what ranks them later."""
    passed = run_pass(events, population, horizon, traits)
    frames = memory_frames(passed)
    if next_best is None:
        return frames, None
    if population.model is None:
        # Only what ranking needs: the weights' posteriors, not their summaries.
        slim = replace(
            passed.state,
            weights=passed.state.weights.select("customer", "label_id", "alpha", "beta"),
        )
        return frames, NextBestLater(slim, next_best)
    frames["next_best"] = next_best_rows(
        passed.state,
        population.model,
        next_best.candidates,
        next_best.boosts,
        next_best.top,
        always=next_best.always,
    )
    return frames, None


def customer_memory(
    *,
    events: pl.DataFrame,
    population: Population,
    horizon: float,
    traits: pl.DataFrame | None = None,
    next_best: NextBestAsked | None = None,
) -> dict[str, pl.DataFrame]:
    """Return these customers' weights, habituation loads and state from their own events,
    and with ``next_best`` each one's best messages (``next_best_rows``; needs the model).

    ``events`` use a dense ``customer`` 0..n-1 for this shard and the population's message
    indices; only events strictly before ``horizon`` are read. One state row per customer.
    """
    if next_best is not None:
        _model(population)
    frames, _ = customer_memory_staged(
        events=events, population=population, horizon=horizon, traits=traits, next_best=next_best
    )
    return frames


def cold_start_next_best(
    *, population: Population, horizon: float, next_best: NextBestAsked
) -> pl.DataFrame:
    """Return the best messages of a customer without events: the population's ranking."""
    passed = run_pass(
        pl.DataFrame(schema={"customer": pl.Int64, "name": pl.Utf8, "t": pl.Float64}),
        population,
        horizon,
        with_propensity=False,
        with_signals=False,
    )
    return next_best_rows(
        passed.state,
        _model(population),
        next_best.candidates,
        next_best.boosts,
        next_best.top,
        customers=np.array([passed.state.n_customers]),
        always=next_best.always,
    )


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
    boost = message_boosts(
        state.label_priors, state.message_labels, candidates, boosts, state.n_messages
    )
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
