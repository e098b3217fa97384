"""Synthetic workspaces with planted preferences, similar message clusters and priming actions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import expit

from memory.scoring.frames import EngineConfig

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "offer": ("discount", "bogo", "free-shipping", "loyalty-points"),
    "tone": ("urgent", "friendly", "playful"),
}
CLUSTER_TEMPLATES = (
    "Save {n}% on your next order this week",
    "Buy one, get one free on all drinks today",
    "Free shipping on everything, no minimum",
    "Earn double loyalty points on every purchase",
    "Last chance: your reward expires tonight",
    "We picked something new just for you",
)
PRIMING_ACTION = "Product Viewed"
# Base log-odds of a send's extra goal, and how far back a same-cluster send wears it out.
RESPONSE_INTERCEPT = -1.5
# An open's log-odds: OPEN_INTERCEPT + OPEN_SLOPE * the message's pull (then the same wear-out).
OPEN_INTERCEPT = 0.3
OPEN_SLOPE = 0.5
WEAR_WINDOW_H = 336.0
NOISE_ACTION = "Page Viewed"


@dataclass
class SyntheticWorkspace:
    """Hold a generated workspace and the truth planted in it."""

    events: pl.DataFrame
    messages: pl.DataFrame
    message_labels: pl.DataFrame
    preferences: pl.DataFrame  # customer, label_set, label, preference (log-odds)
    config: EngineConfig
    span_h: float
    # What the planted effect of a send needs: each message's cluster and the wear-out strength.
    cluster_of: np.ndarray | None = None
    habituation_strength: float = 0.0

    def planted_effect(self, at: float) -> np.ndarray:
        """Return (customers x messages) the planted probability of an extra goal from sending
        each message at time ``at``: preference, then wear-out from the sends before it."""
        n_customers = int(self.preferences["customer"].max()) + 1
        catalogue = [(s, label) for s, labels in LABEL_SETS.items() for label in labels]
        preference = self.preferences["preference"].to_numpy().reshape(n_customers, -1)
        incidence = np.zeros((self.messages.height, len(catalogue)))
        for message, label_set, label in self.message_labels.iter_rows():
            incidence[message, catalogue.index((label_set, label))] = 1.0
        sends = self.events.filter(
            (pl.col("name") == self.config.send_event)
            & (pl.col("t") < at)
            & (pl.col("t") >= at - WEAR_WINDOW_H)
        )
        recent = np.zeros((n_customers, int(self.cluster_of.max()) + 1))
        np.add.at(
            recent,
            (sends["customer"].to_numpy(), self.cluster_of[sends["message"].to_numpy()]),
            1.0,
        )
        wear = np.exp(-self.habituation_strength * recent[:, self.cluster_of])
        return expit(RESPONSE_INTERCEPT + preference @ incidence.T) * wear


def synthetic_workspace(
    n_customers: int = 2_000,
    n_events: int = 100_000,
    *,
    span_h: float = 4_320.0,
    messages_per_cluster: int = 4,
    preference_sd: float = 1.0,
    habituation_strength: float = 0.15,
    priming_probability: float = 0.35,
    seed: int = 0,
) -> SyntheticWorkspace:
    """Generate a workspace of about n_events events; every step is vectorised.

    Each customer has a baseline goal rate, a log-odds preference per label and wears out on
    repeated sends of the same cluster. A send causes an extra goal within the window with
    probability sigmoid(-1.5 + sum of the message's label preferences) * exp(-strength * n),
    n = sends of the same cluster to that customer in the 336 h before. ``Product Viewed``
    primes the goal.
    """
    rng = np.random.default_rng(seed)
    config = EngineConfig()
    messages, message_labels, label_matrix, cluster_of = _messages(messages_per_cluster, rng)
    n_messages = messages.height
    per_customer = n_events / max(n_customers, 1)
    # Shares of the event budget; responses and opens add about 0.5 events per send.
    sends_each, page_each, view_each, goal_each = (0.35, 0.30, 0.08, 0.04)
    send_count = rng.poisson(sends_each * per_customer, n_customers)
    base_rate = np.exp(rng.normal(0.0, 0.7, n_customers)) * goal_each * per_customer / span_h
    n_labels = label_matrix.shape[1]
    preference = rng.normal(0.0, preference_sd, (n_customers, n_labels))

    send_customer = np.repeat(np.arange(n_customers), send_count)
    send_t = rng.uniform(0.0, span_h, send_customer.size)
    send_message = rng.integers(0, n_messages, send_customer.size)
    repeats = _recent_same_group(send_customer, cluster_of[send_message], send_t, WEAR_WINDOW_H)
    # Each customer's pull per message first: a (customers x messages) product, then a lookup.
    pull = (preference @ label_matrix.T)[send_customer, send_message]
    wear = np.exp(-habituation_strength * repeats)
    responds = rng.random(send_customer.size) < expit(RESPONSE_INTERCEPT + pull) * wear
    response_t = send_t + np.minimum(rng.exponential(12.0, send_customer.size), 70.0)
    opens = rng.random(send_customer.size) < expit(OPEN_INTERCEPT + OPEN_SLOPE * pull) * wear
    open_t = send_t + rng.exponential(2.0, send_customer.size)

    goal_count = rng.poisson(base_rate * span_h)
    goal_customer = np.repeat(np.arange(n_customers), goal_count)
    goal_t = rng.uniform(0.0, span_h, goal_customer.size)
    view_customer = np.repeat(
        np.arange(n_customers), rng.poisson(view_each * per_customer, n_customers)
    )
    view_t = rng.uniform(0.0, span_h, view_customer.size)
    primed = rng.random(view_customer.size) < priming_probability
    primed_t = view_t + rng.exponential(6.0, view_customer.size)
    page_customer = np.repeat(
        np.arange(n_customers), rng.poisson(page_each * per_customer, n_customers)
    )
    page_t = rng.uniform(0.0, span_h, page_customer.size)

    parts = [
        (send_customer, config.send_event, send_t, send_message),
        (send_customer[opens], config.open_event, open_t[opens], send_message[opens]),
        (send_customer[responds], config.goal_event, response_t[responds], None),
        (goal_customer, config.goal_event, goal_t, None),
        (view_customer, PRIMING_ACTION, view_t, None),
        (view_customer[primed], config.goal_event, primed_t[primed], None),
        (page_customer, NOISE_ACTION, page_t, None),
    ]
    events = _events(parts, span_h)
    catalogue = [(s, label) for s, labels in LABEL_SETS.items() for label in labels]
    label_index = pl.Series(np.tile(np.arange(n_labels), n_customers))
    preferences = pl.DataFrame(
        {
            "customer": np.repeat(np.arange(n_customers, dtype=np.int64), n_labels),
            "label_set": pl.Series([s for s, _ in catalogue]).gather(label_index),
            "label": pl.Series([label for _, label in catalogue]).gather(label_index),
            "preference": preference.ravel(),
        }
    )
    return SyntheticWorkspace(
        events,
        messages,
        message_labels,
        preferences,
        config,
        span_h,
        cluster_of=cluster_of,
        habituation_strength=habituation_strength,
    )


def _messages(
    per_cluster: int, rng: np.random.Generator
) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray, np.ndarray]:
    """Return messages (clusters of near-identical texts), their labels and incidence matrix."""
    catalogue = [(s, label) for s, labels in LABEL_SETS.items() for label in labels]
    rows, label_rows, cluster_of = [], [], []
    incidence = []
    suffixes = ("", " - don't miss it", " - just for you", " - members only", " today", " now")
    for cluster, template in enumerate(CLUSTER_TEMPLATES):
        offer = LABEL_SETS["offer"][cluster % len(LABEL_SETS["offer"])]
        for variant in range(per_cluster):
            message = len(rows)
            tone = LABEL_SETS["tone"][int(rng.integers(0, len(LABEL_SETS["tone"])))]
            text = template.format(n=10 + 5 * variant) + suffixes[variant % len(suffixes)]
            rows.append((message, f"m{message:03d}", text))
            label_rows += [(message, "offer", offer), (message, "tone", tone)]
            incidence.append(
                [
                    1.0 if (s, lab) in {("offer", offer), ("tone", tone)} else 0.0
                    for s, lab in catalogue
                ]
            )
            cluster_of.append(cluster)
    messages = pl.DataFrame(
        rows, schema={"message": pl.Int64, "key": pl.Utf8, "text": pl.Utf8}, orient="row"
    )
    labels = pl.DataFrame(
        label_rows,
        schema={"message": pl.Int64, "label_set": pl.Utf8, "label": pl.Utf8},
        orient="row",
    )
    return messages, labels, np.asarray(incidence), np.asarray(cluster_of)


def _recent_same_group(
    customer: np.ndarray, group: np.ndarray, t: np.ndarray, within_h: float
) -> np.ndarray:
    """Return per send how many earlier sends of its customer and group fall within_h before."""
    n_groups = int(group.max()) + 1 if group.size else 1
    span = float(t.max() - t.min()) + within_h + 1.0 if t.size else 1.0
    key = (customer * n_groups + group) * span + (t - (t.min() if t.size else 0))
    order = pl.Series(key).arg_sort().to_numpy()  # multi-threaded, unlike numpy's
    key = key[order]
    recent = np.arange(key.size) - np.searchsorted(key, key - within_h, side="left")
    counts = np.empty(key.size, dtype=np.int64)
    counts[order] = recent
    return counts


def _events(
    parts: list[tuple[np.ndarray, str, np.ndarray, np.ndarray | None]], span_h: float
) -> pl.DataFrame:
    """Return every kind of events in one frame of the contract's schema, before span_h."""
    names = [part[1] for part in parts]
    customer = np.concatenate([part[0] for part in parts]).astype(np.int64)
    t = np.concatenate([part[2] for part in parts]).astype(np.float64)
    code = np.repeat(np.arange(len(parts)), [part[0].size for part in parts])
    message = np.concatenate(
        [np.full(p[0].size, -1) if p[3] is None else p[3] for p in parts]
    ).astype(np.int64)
    keep = t < span_h
    message = message[keep]
    return pl.DataFrame(
        {
            "customer": customer[keep],
            "name": pl.Series(names, dtype=pl.Utf8).gather(pl.Series(code[keep])),
            "t": t[keep],
            "message": pl.Series(message).set(pl.Series(message < 0), None),
            "revenue": pl.repeat(None, int(keep.sum()), dtype=pl.Float64, eager=True),
        }
    )
