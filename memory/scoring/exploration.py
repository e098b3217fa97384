"""Message-level exploration with logged propensities (Thompson, or the best with a uniform
share), and holdout arms.

Serving a decision draws each eligible message's score from its posterior, normal on the logit
scale around the stored score with the stored spread (the sd of the labels' contribution under
the customer's label posteriors), `draws` times; a message's Thompson share is the share of draws
it wins. A small uniform mix keeps every eligible message at least `floor` likely, so that an
importance weight 1/propensity stays bounded: with K messages the mix weight is min(1, floor K)
and propensity = (1 - mix) share + mix / K. The served message is then drawn from those very
propensities, so the logged propensity is exactly the probability it was chosen with.

Rows belong to groups (one group per decision: a customer's eligible messages); everything here
works on whole columns, so a burst of 100k decisions is one pass (docs/decisions/0600).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

DRAWS = 1000
FLOOR = 0.01
# Beyond this many spreads apart, one message's draw never beats another's in practice.
SURE_SD = 6.0
# Padded cells per chunk (groups x draws x widest group): bounds the memory of a burst.
CHUNK_CELLS = 8_000_000

PRIMER, RANDOM, NO_MEMORY = "primer", "random", "no_memory"
ARMS = (PRIMER, RANDOM, NO_MEMORY)


def _group_layout(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return each group's start and size, and each row's position within its group.

    Rows must be sorted by group (any group ids; consecutive equal ids form a group).
    """
    group = np.asarray(group)
    if not group.size:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    change = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[change, group.size])
    position = np.arange(group.size) - np.repeat(change, sizes)
    return change, sizes, position


def thompson_shares(
    group: np.ndarray,
    score: np.ndarray,
    spread: np.ndarray,
    *,
    draws: int = DRAWS,
    seed: int = 0,
) -> np.ndarray:
    """Return each row's share of the draws its group's messages win (per group they sum to 1).

    A draw of a message is score + spread * z, z standard normal, independent between messages
    and draws; ties go to the earlier row of the group. A spread of 0 makes the draw the score.
    A message whose score + 6 spreads stays below another's score - 6 spreads cannot win and
    is not drawn. Groups with as many contenders share one seeded matrix of z (common random
    numbers): each group's shares are still its own Monte Carlo estimate, and a burst costs
    arithmetic, not random numbers.
    """
    score = np.asarray(score, dtype=np.float64)
    spread = np.maximum(np.asarray(spread, dtype=np.float64), 0.0)
    starts, sizes, position = _group_layout(group)
    shares = np.zeros(score.size)
    if not score.size:
        return shares
    owner = np.repeat(np.arange(starts.size), sizes)
    best_lower = np.maximum.reduceat(score - SURE_SD * spread, starts)
    contender = score + SURE_SD * spread >= best_lower[owner]
    # Within each group, contenders first, in row order: the first c rows of a group's slice.
    order = np.lexsort((position, ~contender, owner))
    contenders = np.add.reduceat(contender.astype(np.int64), starts)
    rng = np.random.default_rng(seed)
    score32, spread32 = score.astype(np.float32), spread.astype(np.float32)
    for width in np.unique(contenders).tolist():
        members = np.flatnonzero(contenders == width)
        if width == 1:
            shares[order[starts[members]]] = 1.0
            continue
        rows = order[starts[members][:, None] + np.arange(width)[None, :]]
        z = rng.standard_normal((draws, width), dtype=np.float32)
        per_chunk = max(1, CHUNK_CELLS // (draws * width))
        for start in range(0, members.size, per_chunk):
            block = rows[start : start + per_chunk]
            n = block.shape[0]
            drawn = spread32[block][:, None, :] * z[None, :, :]
            drawn += score32[block][:, None, :]
            winner = drawn.argmax(axis=2) + (np.arange(n) * width)[:, None]
            counts = np.bincount(winner.ravel(), minlength=n * width)
            shares[block.ravel()] = counts / draws
    return shares


def floored(group: np.ndarray, shares: np.ndarray, *, floor: float = FLOOR) -> np.ndarray:
    """Mix the shares with the uniform choice so each row is at least min(floor, 1/K) likely."""
    _, sizes, _ = _group_layout(group)
    k = np.repeat(sizes, sizes).astype(np.float64)
    mix = np.minimum(1.0, floor * k)
    return (1.0 - mix) * np.asarray(shares, dtype=np.float64) + mix / k


def explore_propensities(
    group: np.ndarray,
    score: np.ndarray,
    spread: np.ndarray,
    *,
    draws: int = DRAWS,
    floor: float = FLOOR,
    seed: int = 0,
) -> np.ndarray:
    """Return each eligible row's probability of being served: floored Thompson shares."""
    return floored(
        group, thompson_shares(group, score, spread, draws=draws, seed=seed), floor=floor
    )


def epsilon_propensities(
    group: np.ndarray, score: np.ndarray, *, share: float, floor: float = FLOOR
) -> np.ndarray:
    """Return the probabilities of serving the best score, except for a `share` of decisions
    drawn uniformly among the K messages (at least the floor's mix, min(1, floor K)): the best
    gets 1 - g + g/K, every other message g/K, with g = max(share, min(1, floor K))."""
    _, sizes, _ = _group_layout(group)
    k = np.repeat(sizes, sizes).astype(np.float64)
    mix = np.maximum(min(max(float(share), 0.0), 1.0), np.minimum(1.0, floor * k))
    return (1.0 - mix) * top_propensities(group, score) + mix / k


def uniform_propensities(group: np.ndarray) -> np.ndarray:
    """Return 1/K for each of a group's K rows: the random arm's choice."""
    _, sizes, _ = _group_layout(group)
    return 1.0 / np.repeat(sizes, sizes).astype(np.float64)


def top_propensities(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Return 1 for each group's best score (ties: its earliest row), 0 elsewhere."""
    starts, sizes, _ = _group_layout(group)
    chosen = np.zeros(np.asarray(score).size)
    if not chosen.size:
        return chosen
    best = np.maximum.reduceat(np.asarray(score, dtype=np.float64), starts)
    is_best = np.asarray(score) >= np.repeat(best, sizes)
    first = np.flatnonzero(is_best)
    owner = np.searchsorted(starts, first, side="right") - 1
    _, keep = np.unique(owner, return_index=True)
    chosen[first[keep]] = 1.0
    return chosen


def choose(group: np.ndarray, propensity: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Return each group's chosen row: the inverse of its propensities' CDF at its uniform.

    ``uniforms`` holds one number in [0, 1) per group, in group order.
    """
    starts, sizes, _ = _group_layout(group)
    if not starts.size:
        return np.zeros(0, dtype=np.int64)
    cumulative = np.cumsum(np.asarray(propensity, dtype=np.float64))
    before = np.r_[0.0, cumulative][starts]
    total = cumulative[starts + sizes - 1] - before
    target = before + np.asarray(uniforms, dtype=np.float64) * total
    picked = np.searchsorted(cumulative, target, side="right")
    return np.minimum(picked, starts + sizes - 1)


def unit_hash(*parts: object) -> float:
    """Return a stable number in [0, 1) for the parts (SHA-256: the same in every process)."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def arm_of(position: float, shares: Mapping[str, float]) -> str:
    """Return the arm a customer at `position` in [0, 1) falls in: random, then no memory, then
    Primer, by cumulative share (Primer takes what the holdouts leave)."""
    edge = 0.0
    for arm in (RANDOM, NO_MEMORY):
        edge += float(shares.get(arm, 0.0))
        if position < edge:
            return arm
    return PRIMER


def assign_arm(
    workspace_id: int, campaign_id: int, customer_id: int, shares: Mapping[str, float]
) -> str:
    """Return the arm of one customer in one campaign: a stable hash of the three ids."""
    return arm_of(unit_hash("arm", workspace_id, campaign_id, customer_id), shares)
