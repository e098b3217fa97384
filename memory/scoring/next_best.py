"""Each customer's next best messages, set-based, for the recompute to store.

The same ranking as ``sharded.rank_state`` (score = logit p + ln(boost_odds) * the mean boost of
the message's labels, ties by message index), for every customer of a shard at once: features
of whole blocks of customers x candidate messages, then the top few per customer with what sets
each message apart and the spread read-time exploration draws with
(docs/decisions/0106-stored-next-best.md).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from memory.scoring.associative import RATE_FLOOR, logit_normal_moments
from memory.scoring.model import FEATURE_GROUPS, MemoryState, ScoringModel, block_features, predict

# What sets one message apart from another for the same customer: the features that vary by
# message (the customer's own baseline, recency and priming lift every message alike).
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "pull": FEATURE_GROUPS["message"] + FEATURE_GROUPS["interaction"],
    "labels": FEATURE_GROUPS["associative"],
    "wear_out": FEATURE_GROUPS["habituation"],
}
NEXT_BEST_COLUMNS = [
    "customer",
    "message",
    "rank",
    "score",
    "p_goal",
    "boost",
    *REASON_GROUPS,
    "spread",
]
NEXT_BEST_SCHEMA = {
    "customer": pl.Int64,
    "message": pl.Int64,
    "rank": pl.Int64,
    **{name: pl.Float64 for name in NEXT_BEST_COLUMNS[3:]},
}
# Customers x candidates per block: the features of a block are about ten such matrices.
BLOCK_CELLS = 250_000


def message_boosts(
    label_priors: pl.DataFrame,
    message_labels,
    candidates: np.ndarray,
    boosts: pl.DataFrame | None,
    n_messages: int,
) -> np.ndarray:
    """Return each candidate's mean boost of its labels (``boosts``: label_set, label, boost in
    [-1, 1]; labels missing count 0; a message the population does not know gets 0)."""
    boost = np.zeros(candidates.size)
    if boosts is None or not boosts.height:
        return boost
    catalogue = label_priors.select("label_id", "label_set", "label")
    per_label = np.zeros(catalogue.height)
    matched = catalogue.join(
        boosts.select("label_set", "label", pl.col("boost").clip(-1.0, 1.0)),
        on=["label_set", "label"],
    )
    per_label[matched["label_id"].to_numpy()] = matched["boost"].to_numpy()
    known = candidates < n_messages
    boost[known] = message_labels[candidates[known]] @ per_label
    return boost


def _coefficient(model: ScoringModel, feature: str) -> float:
    """Return the calibrated logit change per unit of a feature (0 if the model lacks it)."""
    if feature not in model.features:
        return 0.0
    return float(model.calibration[1] * model.coefficients[1 + model.features.index(feature)])


def _top_and_always(
    ranked: np.ndarray, keep: int, kept_always: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Return the (row, column) cells to keep, by row then rank, and their 0-based ranks: each
    row's `keep` best columns (``ranked``: columns best first per row) and every column of
    ``kept_always`` below them."""
    rows = np.arange(ranked.shape[0])[:, None]
    rank_of = np.empty_like(ranked)
    rank_of[rows, ranked] = np.arange(ranked.shape[1])[None, :]
    kept = (rank_of < keep) | kept_always[None, :]
    row, column = np.nonzero(kept)
    order = np.lexsort((rank_of[row, column], row))
    row, column = row[order], column[order]
    return (row, column), rank_of[row, column]


def _label_variances(state: MemoryState, customers: np.ndarray) -> np.ndarray:
    """Return (customers, labels): the variance of log(response rate) under each customer's
    Beta posterior of each label, their prior where they have no posterior (as
    ``thompson_association`` draws), by the delta method from the exact logit moments."""
    priors = state.label_priors.sort("label_id")
    known = customers < state.n_customers
    base = np.full(customers.size, state.pooled_baseline_rate)
    base[known] = state.baseline_rate[customers[known]]
    prior_rate = np.clip(
        base[:, None] * priors["population_lift"].to_numpy()[None, :], RATE_FLOOR, 1 - RATE_FLOOR
    )
    kappa = priors["kappa"].to_numpy()[None, :]
    alpha, beta = kappa * prior_rate, kappa * (1.0 - prior_rate)
    weights = state.weights
    if weights.height:
        position = np.full(max(state.n_customers, int(customers.max()) + 1), -1)
        position[customers] = np.arange(customers.size)
        owner = weights["customer"].to_numpy()
        row = np.where(owner < position.size, position[np.minimum(owner, position.size - 1)], -1)
        mine = row >= 0
        label = weights["label_id"].to_numpy()[mine]
        alpha[row[mine], label] = weights["alpha"].to_numpy()[mine]
        beta[row[mine], label] = weights["beta"].to_numpy()[mine]
    _, sd = logit_normal_moments(alpha, beta)
    rate = alpha / (alpha + beta)
    return ((1.0 - rate) * sd) ** 2


def next_best_rows(
    state: MemoryState,
    model: ScoringModel,
    candidates: np.ndarray,
    boosts: pl.DataFrame | None,
    top: int,
    customers: np.ndarray | None = None,
    always: np.ndarray | None = None,
) -> pl.DataFrame:
    """Return each customer's `top` best candidates, rank 1 first (NEXT_BEST_COLUMNS), and
    also each candidate of ``always`` wherever it ranks (a live campaign's messages, so every
    customer can be decided for among them); ranks are among all candidates.

    ``customers`` defaults to every customer of the state; an index past them is scored from
    the population (the cold-start list). ``pull``, ``labels`` and ``wear_out`` are the odds
    multipliers of REASON_GROUPS' features; ``spread`` is the sd, on the logit scale, of the
    labels' contribution under the customer's label posteriors.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    customers = (
        np.arange(state.n_customers, dtype=np.int64)
        if customers is None
        else np.asarray(customers, dtype=np.int64)
    )
    if not candidates.size or not customers.size or top < 1:
        return pl.DataFrame(schema=NEXT_BEST_SCHEMA)
    candidates = np.sort(candidates)  # ties go to the lower message index, as in rank_state
    keep = min(top, candidates.size)
    kept_always = np.isin(candidates, np.asarray(always if always is not None else [], np.int64))
    everywhere = bool(kept_always.any()) and keep < candidates.size
    boost = message_boosts(
        state.label_priors, state.message_labels, candidates, boosts, state.n_messages
    )
    shift = np.log(state.config.boost_odds) * boost
    # Each label's share of the message's association, squared: the draws' variances add so.
    squared_labels = np.zeros((candidates.size, state.message_labels.shape[1]))
    known = candidates < state.n_messages
    if known.any():
        rows = state.message_labels[candidates[known]]
        squared_labels[known] = rows.multiply(rows).toarray()
    association_coefficient = _coefficient(model, "association")
    block = max(1, BLOCK_CELLS // candidates.size)
    parts = []
    for start in range(0, customers.size, block):
        chosen = customers[start : start + block]
        features = block_features(state, chosen, candidates)
        shape = (chosen.size, candidates.size)
        p, contributions = predict(
            model, {name: np.ascontiguousarray(value).ravel() for name, value in features.items()}
        )
        score = (np.log(p / (1 - p))).reshape(shape) + shift[None, :]
        ranked = np.argsort(-score, axis=1, kind="stable")
        if everywhere:
            picked, rank = _top_and_always(ranked, keep, kept_always)
            order, owner = picked[1], chosen[picked[0]]
        else:
            order = ranked[:, :keep]
            picked = (np.arange(chosen.size)[:, None], order)
            rank = np.broadcast_to(np.arange(keep, dtype=np.int64), order.shape)
            owner = np.repeat(chosen, keep)
        reasons = {}
        for reason, names in REASON_GROUPS.items():
            logit = np.zeros(shape)
            for name in names:
                column = f"contribution_{name}"
                if column in contributions.columns:
                    logit += contributions[column].to_numpy().reshape(shape)
            reasons[reason] = np.exp(logit[picked])
        if association_coefficient:
            variance = _label_variances(state, chosen) @ squared_labels.T
            spread = abs(association_coefficient) * np.sqrt(variance[picked])
        else:
            spread = np.zeros(np.shape(order))
        parts.append(
            pl.DataFrame(
                {
                    "customer": owner,
                    "message": candidates[order].ravel(),
                    "rank": rank.ravel() + 1,
                    "score": score[picked].ravel(),
                    "p_goal": p.reshape(shape)[picked].ravel(),
                    "boost": boost[order].ravel(),
                    **{reason: values.ravel() for reason, values in reasons.items()},
                    "spread": spread.ravel(),
                },
                schema=NEXT_BEST_SCHEMA,
            )
        )
    return pl.concat(parts)
