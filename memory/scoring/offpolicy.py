"""Off-policy value of a decision policy from logged sends: IPS, self-normalised IPS, DR.

Each logged send i has a reward r_i, the logging policy's probability p_i of the action it took,
the target policy's probability t_i of that same action, and (for doubly robust) the outcome
model's prediction q_i for the logged action and v_i = sum over actions of the target's
probability times the model's prediction. With w_i = t_i / p_i:

- IPS = mean(w r); unbiased when every p_i > 0 is the true logging probability.
- SNIPS = sum(w r) / sum(w); a little biased, much less variable when few sends match.
- DR = mean(v + w (r - q)); unbiased if either the propensities or the model are right.

Intervals resample customers (clusters) with replacement, because one customer's sends are not
independent; a difference between two policies resamples the same customers for both (paired).
A logged propensity (e.g. a served decision's Thompson share) plugs in as ``propensity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True)
class Estimate:
    """Hold a point estimate and its bootstrap interval."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        """Return whether x lies inside the interval."""
        return self.low <= x <= self.high


@dataclass(frozen=True)
class Target:
    """Hold a target policy's probability of each logged action and the model's value of it."""

    probability: np.ndarray  # t_i: 1/0 for a deterministic policy (chose the logged action)
    model_value: np.ndarray | None = None  # v_i: sum_a target(a | x_i) * model(x_i, a)


@dataclass(frozen=True)
class PolicyValue:
    """Hold one policy's matched sends, estimates and differences from the reference."""

    name: str
    matches: int
    estimates: dict[str, Estimate]
    differences: dict[str, Estimate]


def importance_weights(target_probability: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    """Return w = target probability / logging propensity; a zero propensity is an error."""
    propensity = np.asarray(propensity, dtype=np.float64)
    if np.any(propensity <= 0):
        raise ValueError("a logging propensity of 0 makes the target's value unidentifiable")
    return np.asarray(target_probability, dtype=np.float64) / propensity


def ips(reward: np.ndarray, weight: np.ndarray) -> float:
    """Return the inverse-propensity estimate mean(w r)."""
    return float(np.mean(weight * reward)) if reward.size else float("nan")


def snips(reward: np.ndarray, weight: np.ndarray) -> float:
    """Return the self-normalised estimate sum(w r) / sum(w) (NaN when nothing matches)."""
    total = float(np.sum(weight))
    return float(np.sum(weight * reward)) / total if total > 0 else float("nan")


def doubly_robust(
    reward: np.ndarray, weight: np.ndarray, model_logged: np.ndarray, model_value: np.ndarray
) -> float:
    """Return the doubly robust estimate mean(v + w (r - q))."""
    if not reward.size:
        return float("nan")
    return float(np.mean(model_value + weight * (reward - model_logged)))


def _cluster_sums(clusters: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Return per-cluster sums of each column: (clusters x columns)."""
    _, index = np.unique(clusters, return_inverse=True)
    sums = np.zeros((int(index.max()) + 1 if index.size else 0, columns.shape[1]))
    np.add.at(sums, index, columns)
    return sums


def _resampled_sums(sums: np.ndarray, draws: int, seed: int, chunk: int = 100) -> np.ndarray:
    """Return (draws x columns) totals over clusters resampled with replacement."""
    rng = np.random.default_rng(seed)
    n = sums.shape[0]
    out = []
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size) if n else np.zeros((size, 0))
        out.append(counts @ sums)
    return np.vstack(out) if out else np.zeros((0, sums.shape[1]))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def policy_values(
    *,
    reward: np.ndarray,
    propensity: np.ndarray,
    clusters: np.ndarray,
    targets: Mapping[str, Target],
    reference: str,
    model_logged: np.ndarray | None = None,
    draws: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> list[PolicyValue]:
    """Estimate each target policy's value, and its difference from the reference, with
    percentile intervals from one customer-level bootstrap shared by every policy (paired).

    DR is left out (absent from ``estimates``) without ``model_logged`` or a target's
    ``model_value``.
    """
    reward = np.asarray(reward, dtype=np.float64)
    if reference not in targets:
        raise ValueError(f"the reference policy {reference!r} is not among the targets")
    columns, layout = [np.ones(reward.size)], {}
    for name, target in targets.items():
        weight = importance_weights(target.probability, propensity)
        layout[name] = {"w": len(columns), "wr": len(columns) + 1}
        columns += [weight, weight * reward]
        if model_logged is not None and target.model_value is not None:
            layout[name]["dr"] = len(columns)
            columns.append(target.model_value + weight * (reward - model_logged))
    matrix = np.column_stack(columns)
    totals = matrix.sum(axis=0)
    boot = _resampled_sums(_cluster_sums(np.asarray(clusters), matrix), draws, seed)
    tail = (1.0 - level) / 2.0

    def values(sums: np.ndarray, name: str) -> dict[str, np.ndarray]:
        where = layout[name]
        out = {
            "ips": _ratio(sums[..., where["wr"]], sums[..., 0]),
            "snips": _ratio(sums[..., where["wr"]], sums[..., where["w"]]),
        }
        if "dr" in where:
            out["dr"] = _ratio(sums[..., where["dr"]], sums[..., 0])
        return out

    def interval(point: float, sample: np.ndarray) -> Estimate:
        sample = sample[np.isfinite(sample)]
        if not sample.size:
            return Estimate(point, float("nan"), float("nan"))
        low, high = np.quantile(sample, [tail, 1.0 - tail])
        return Estimate(point, float(low), float(high))

    reference_point, reference_boot = values(totals, reference), values(boot, reference)
    results = []
    for name, target in targets.items():
        point, sample = values(totals, name), values(boot, name)
        estimates = {key: interval(float(point[key]), sample[key]) for key in point}
        differences = {
            key: interval(
                float(point[key] - reference_point[key]), sample[key] - reference_boot[key]
            )
            for key in point
            if key in reference_point
        }
        matches = int(np.count_nonzero(np.asarray(target.probability) > 0))
        results.append(PolicyValue(name, matches, estimates, differences))
    return results


def minimum_detectable_effect(
    rate: float, n_first: int, n_second: int, *, power: float = 0.8, alpha: float = 0.05
) -> float:
    """Return the smallest rise over ``rate`` a two-sided two-proportion z-test detects.

    Solves d = z(1 - alpha/2) sqrt(pbar (1 - pbar) (1/n1 + 1/n2))
             + z(power) sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2), p2 = p1 + d, by iteration.
    """
    if n_first <= 0 or n_second <= 0:
        return float("inf")
    z_alpha = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    z_power = NormalDist().inv_cdf(power)
    p1, d = float(rate), 0.0
    for _ in range(100):
        p2 = min(p1 + d, 1.0)
        pooled = (n_first * p1 + n_second * p2) / (n_first + n_second)
        updated = z_alpha * np.sqrt(pooled * (1 - pooled) * (1 / n_first + 1 / n_second))
        updated += z_power * np.sqrt(p1 * (1 - p1) / n_first + p2 * (1 - p2) / n_second)
        if abs(updated - d) < 1e-12:
            break
        d = float(updated)
    return d
