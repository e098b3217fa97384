"""How much of an oracle's gain Primer's next best captures on planted workspaces (no Django).

Each synthetic workspace plants per-customer label preferences, clusters of near-duplicate
messages that wear out, and a priming action (memory.scoring.synthetic). At the cut-off every
customer gets one message from each policy, valued by its planted effect there (preference and
wear-out): the probability of an extra goal. The gain of a policy is its mean planted effect
minus that of the average customer's best message (one message for everyone, the highest
population rate); its share is that gain over the oracle's (each customer's planted best).

The parameters below were fixed before anything was measured and are not tuned on the output.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.scoring.model import ALL_FEATURES, calibrated_p, candidate_features
from memory.scoring.outcomes import send_outcomes
from memory.scoring.pipeline import compute_memory, fit_model
from memory.scoring.synthetic import (
    LABEL_SETS,
    OPEN_INTERCEPT,
    OPEN_SLOPE,
    RESPONSE_INTERCEPT,
    SyntheticWorkspace,
    synthetic_workspace,
)

# Fixed first: the generator's defaults (preference sd 1.0, wear-out 0.15 per recent
# same-cluster send, priming probability 0.35, 4 near-duplicates per cluster), 2,000 customers
# over 180 days, three seeds, the cut-off at the end of the data, and the reference's k = 4.
CUSTOMERS = 2_000
SPAN_H = 4_320.0
SEEDS = (11, 12, 13)
SENDS_PER_CUSTOMER = (25, 8)
REFERENCE_K = 4.0
# The generator's default preference sd, which the informed Bayes learner is told.
PREFERENCE_SD = 1.0
VALUE_PROPOSITION = "offer"
# Share of the generator's event budget that are sends (synthetic.py: sends_each).
SEND_SHARE = 0.35


def workspace_with(sends_per_customer: int, seed: int) -> SyntheticWorkspace:
    """Generate a planted workspace with about this many sends per customer."""
    events = round(sends_per_customer / SEND_SHARE * CUSTOMERS)
    return synthetic_workspace(CUSTOMERS, events, span_h=SPAN_H, seed=seed)


def reference_choice(
    planted: SyntheticWorkspace, resolved: pl.DataFrame, message_rate: np.ndarray
) -> np.ndarray:
    """Return per customer the best message of their best value proposition.

    A customer's goal rate after sends of each value proposition, shrunk toward the population's
    rate for it with REFERENCE_K pseudo sends; then, within the best proposition, the message
    with the highest population rate.
    """
    propositions = planted.message_labels.filter(pl.col("label_set") == VALUE_PROPOSITION).select(
        "message", "label"
    )
    sends = resolved.join(propositions, on="message")
    population = sends.group_by("label").agg(pl.col("goal").mean().alias("population_rate"))
    customers = pl.DataFrame({"customer": np.arange(CUSTOMERS, dtype=np.int64)})
    rates = (
        customers.join(population, how="cross")
        .join(
            sends.group_by("customer", "label").agg(
                pl.col("goal").sum().alias("goals"), pl.len().alias("n")
            ),
            on=["customer", "label"],
            how="left",
        )
        .with_columns(pl.col("goals").fill_null(0), pl.col("n").fill_null(0))
        .with_columns(
            (
                (pl.col("goals") + REFERENCE_K * pl.col("population_rate"))
                / (pl.col("n") + REFERENCE_K)
            ).alias("rate")
        )
        .sort(["customer", "rate", "label"], descending=[False, True, False])
        .unique("customer", keep="first", maintain_order=True)
    )
    best_message = (
        propositions.with_columns(
            pl.Series("message_rate", message_rate[propositions["message"].to_numpy()])
        )
        .sort(["label", "message_rate", "message"], descending=[False, True, False])
        .unique("label", keep="first")
        .select("label", "message")
    )
    return rates.join(best_message, on="label", how="left").sort("customer")["message"].to_numpy()


def informed_bayes_choice(
    planted: SyntheticWorkspace, resolved: pl.DataFrame, *, with_opens: bool = True
) -> np.ndarray:
    """Return per customer the best message of an estimator told the generator's truth but
    each customer's preferences: about the most any learner can get from these sends.

    Per customer the maximum a posteriori preferences under the planted model: the goal after
    each send is logistic in the message's labels with a free intercept (their baseline), and
    (``with_opens``) its open is logistic with the planted open intercept and slope of the same
    pull; the prior is the planted one (each preference normal with the planted sd, around 0).
    Fitted by Newton's method; the message is then chosen by the fitted pull times the planted
    wear-out at the cut-off (wear known exactly, not learned).
    """
    catalogue = [(s, label) for s, labels in LABEL_SETS.items() for label in labels]
    incidence = np.zeros((planted.messages.height, len(catalogue)))
    for message, label_set, label in planted.message_labels.iter_rows():
        incidence[message, catalogue.index((label_set, label))] = 1.0
    customer = resolved["customer"].to_numpy()
    design = np.c_[np.ones(customer.size), incidence[resolved["message"].to_numpy()]]
    goal = resolved["goal"].cast(pl.Float64).to_numpy()
    k = design.shape[1]
    precision = np.r_[0.25, np.full(k - 1, 1.0 / PREFERENCE_SD**2)]
    centre = np.r_[RESPONSE_INTERCEPT, np.zeros(k - 1)]
    beta = np.tile(centre, (CUSTOMERS, 1))
    outer = design[:, :, None] * design[:, None, :]
    # The open's design: no baseline of its own, the pull scaled by the planted slope.
    open_design = np.c_[np.zeros(customer.size), OPEN_SLOPE * design[:, 1:]]
    open_outer = open_design[:, :, None] * open_design[:, None, :]
    opened = resolved["opened"].cast(pl.Float64).to_numpy()
    for _ in range(25):
        p = expit(np.einsum("ij,ij->i", design, beta[customer]))
        gradient = -(beta - centre) * precision
        np.add.at(gradient, customer, design * (goal - p)[:, None])
        hessian = np.tile(np.diag(precision), (CUSTOMERS, 1, 1))
        np.add.at(hessian, customer, outer * (p * (1 - p))[:, None, None])
        if with_opens:
            q = expit(OPEN_INTERCEPT + np.einsum("ij,ij->i", open_design, beta[customer]))
            np.add.at(gradient, customer, open_design * (opened - q)[:, None])
            np.add.at(hessian, customer, open_outer * (q * (1 - q))[:, None, None])
        beta += np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
    truth = planted.preferences["preference"].to_numpy().reshape(CUSTOMERS, -1)
    wear = planted.planted_effect(planted.span_h) / expit(RESPONSE_INTERCEPT + truth @ incidence.T)
    return (expit(RESPONSE_INTERCEPT + beta[:, 1:] @ incidence.T) * wear).argmax(axis=1)


def top_label_hits(weights: pl.DataFrame, preferences: pl.DataFrame) -> dict[str, float]:
    """Return how often a customer's top label in a set is their planted favourite, ranked by
    the weight (posterior mean) and by the plain goal rate (conversions / sends)."""
    frame = weights.join(preferences, on=["customer", "label_set", "label"]).with_columns(
        (pl.col("conversions") / pl.col("exposures")).fill_nan(None).alias("plain")
    )
    hits = {}
    for name, column in (("weight", "weight"), ("plain rate", "plain")):
        top = frame.sort(
            ["customer", "label_set", column, "label"],
            descending=[False, False, True, False],
            nulls_last=True,
        ).unique(["customer", "label_set"], keep="first")
        best = frame.group_by("customer", "label_set").agg(pl.col("preference").max())
        joined = top.join(best, on=["customer", "label_set"], suffix="_best")
        hits[name] = float((joined["preference"] == joined["preference_best"]).mean())
    return hits


def shares(sends_per_customer: int, seed: int) -> dict[str, float]:
    """Return the oracle's gain and the shares of it Primer and the reference capture."""
    planted = workspace_with(sends_per_customer, seed)
    cutoff = planted.span_h
    result = compute_memory(
        planted.events, planted.messages, planted.message_labels, planted.config, as_of=cutoff
    )
    effect = planted.planted_effect(cutoff)
    n_messages = planted.messages.height
    customers = np.repeat(np.arange(CUSTOMERS), n_messages)
    messages = np.tile(np.arange(n_messages), CUSTOMERS)
    model = fit_model(result.replay, ALL_FEATURES, planted.config)
    p = calibrated_p(model, candidate_features(result.state, customers, messages))
    primer = p.reshape(CUSTOMERS, n_messages).argmax(axis=1)
    average_best = int(np.argmax(result.state.message_rate))
    outcomes = send_outcomes(planted.events, planted.config, cutoff).filter(pl.col("resolved"))
    reference = reference_choice(planted, outcomes, result.state.message_rate)
    ceiling = informed_bayes_choice(planted, outcomes)
    goals_only = informed_bayes_choice(planted, outcomes, with_opens=False)
    rows = np.arange(CUSTOMERS)
    value = {
        "oracle": effect.max(axis=1).mean(),
        "average": effect[:, average_best].mean(),
        "primer": effect[rows, primer].mean(),
        "reference": effect[rows, reference].mean(),
        "ceiling": effect[rows, ceiling].mean(),
        "goals_only": effect[rows, goals_only].mean(),
    }
    gain = value["oracle"] - value["average"]
    hits = top_label_hits(result.weights, planted.preferences)
    return {
        "weight_hits": hits["weight"],
        "plain_hits": hits["plain rate"],
        "sends": outcomes.height / CUSTOMERS,
        "oracle_gain": gain,
        "primer": (value["primer"] - value["average"]) / gain,
        "reference": (value["reference"] - value["average"]) / gain,
        "ceiling": (value["ceiling"] - value["average"]) / gain,
        "goals_only": (value["goals_only"] - value["average"]) / gain,
    }


def main() -> None:
    """Print the shares of the oracle's gain per seed and send level, and their means."""
    argparse.ArgumentParser(description=__doc__).parse_args()
    columns = (
        ("Primer share", "primer", 13),
        ("reference share", "reference", 16),
        ("informed Bayes", "ceiling", 15),
        ("  of it: goals only", "goals_only", 20),
        ("top label: weight", "weight_hits", 18),
        ("plain rate", "plain_hits", 11),
    )
    print(
        f"{'sends/customer':>14s} {'seed':>5s} {'resolved sends':>14s} {'oracle gain':>12s} "
        + " ".join(f"{title:>{width}s}" for title, _, width in columns)
        + f" {'seconds':>8s}"
    )

    def line(level: int, seed: str, row: dict[str, float], seconds: str) -> str:
        shares_text = " ".join(f"{row[key]:{width}.1%}" for _, key, width in columns)
        return (
            f"{level:14d} {seed:>5s} {row['sends']:14.1f} {row['oracle_gain']:12.4f} "
            f"{shares_text} {seconds:>8s}"
        )

    for level in SENDS_PER_CUSTOMER:
        found = []
        for seed in SEEDS:
            started = time.perf_counter()
            row = shares(level, seed)
            found.append(row)
            print(line(level, str(seed), row, f"{time.perf_counter() - started:.1f}"))
        mean = {key: float(np.mean([r[key] for r in found])) for key in found[0]}
        print(line(level, "mean", mean, ""))
    print(
        "oracle gain: mean planted probability of an extra goal, each customer's best message "
        "against the average customer's best; shares: of that gain. informed Bayes: a learner "
        "told the generator's prior, open model and wear-out, learning only each customer's "
        "preferences from their goals and opens (about the most these data allow; 'goals only': "
        "the same learner ignoring opens). top label: how often the label a customer's weights "
        "(or plain goal rates) rank first in a set is their planted favourite."
    )


if __name__ == "__main__":
    main()
