"""A campaign's uplift: goal rate and revenue per holdout arm, their differences, and the value
of Primer's policy estimated off-policy from the random arm.

The unit is a served decision matched to a send whose outcome window has closed: its reward is
whether the goal followed the send within the campaign's window (and the goal revenue in it).
Customers fall in arms by a stable hash, so the arms are randomised groups and their rates
compare directly. Intervals: Wilson for a rate, Newcombe's hybrid score interval for a difference
of two rates, the normal one (Welch) for revenue per send; the off-policy value uses IPS and
SNIPS with a customer-level bootstrap (offpolicy.policy_values). When a difference's interval
contains 0 the page says "cannot tell yet" and shows the minimum detectable effect at the
current counts (80% power, 5% level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM
from memory.scoring.offpolicy import Estimate, Target, minimum_detectable_effect, policy_values

LEVEL = 0.95


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def wilson_interval(successes: int, n: int, *, level: float = LEVEL) -> Estimate:
    """Return the rate successes/n with Wilson's score interval (NaN when n is 0)."""
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan)
    z, p = _z(level), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def rate_difference(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, level: float = LEVEL
) -> Estimate:
    """Return rate a - rate b with Newcombe's hybrid score interval (method 10)."""
    a, b = (
        wilson_interval(successes_a, n_a, level=level),
        wilson_interval(successes_b, n_b, level=level),
    )
    if math.isnan(a.value) or math.isnan(b.value):
        return Estimate(math.nan, math.nan, math.nan)
    d = a.value - b.value
    low = d - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = d + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return Estimate(d, low, high)


def mean_interval(values: np.ndarray, *, level: float = LEVEL) -> Estimate:
    """Return the mean with a normal interval (NaN bounds with fewer than two values)."""
    values = np.asarray(values, dtype=np.float64)
    if not values.size:
        return Estimate(math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if values.size < 2:
        return Estimate(mean, math.nan, math.nan)
    half = _z(level) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return Estimate(mean, mean - half, mean + half)


def mean_difference(a: np.ndarray, b: np.ndarray, *, level: float = LEVEL) -> Estimate:
    """Return mean(a) - mean(b) with Welch's normal interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        d = float(a.mean() - b.mean()) if a.size and b.size else math.nan
        return Estimate(d, math.nan, math.nan)
    d = float(a.mean() - b.mean())
    half = _z(level) * math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return Estimate(d, d - half, d + half)


@dataclass(frozen=True)
class ArmResult:
    """Hold one arm's matched sends, goals, goal rate and revenue per send."""

    arm: str
    sends: int
    goals: int
    rate: Estimate
    revenue: Estimate | None


@dataclass(frozen=True)
class Comparison:
    """Hold Primer against another arm: the differences and whether they can be told apart."""

    against: str
    difference: Estimate
    revenue_difference: Estimate | None
    detectable: float  # the smallest rise over the other arm's rate detectable at these counts

    @property
    def can_tell(self) -> bool:
        """Return whether the interval of the difference excludes 0."""
        d = self.difference
        return not (math.isnan(d.low) or d.low <= 0.0 <= d.high)


@dataclass(frozen=True)
class OffPolicyValue:
    """Hold Primer's policy valued on the random arm's sends, against the random policy."""

    sends: int
    matches: int
    ips: Estimate
    snips: Estimate
    random: Estimate
    difference: Estimate  # SNIPS of Primer's choice minus the random arm's rate (paired)


@dataclass(frozen=True)
class Uplift:
    arms: list[ArmResult]
    comparisons: list[Comparison]
    off_policy: OffPolicyValue | None


def uplift_of(
    *,
    arm: np.ndarray,
    goal: np.ndarray,
    revenue: np.ndarray | None = None,
    customer: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    primer_match: np.ndarray | None = None,
    level: float = LEVEL,
    draws: int = 1000,
    seed: int = 0,
) -> Uplift:
    """Estimate the campaign's uplift from its resolved, matched decisions (one row each).

    ``revenue``: the goal revenue in the window (NaN or absent: no revenue reported);
    ``eligible``: how many messages each decision chose among; ``primer_match``: for the random
    arm's decisions, whether the served message is the one Primer would have chosen.
    """
    arm = np.asarray(arm).astype(str)
    goal = np.asarray(goal, dtype=np.float64)
    has_revenue = revenue is not None and np.isfinite(np.asarray(revenue, dtype=float)).any()
    revenue = np.nan_to_num(np.asarray(revenue, dtype=np.float64)) if has_revenue else None
    arms = []
    for name in (PRIMER, RANDOM, NO_MEMORY):
        mine = arm == name
        n, goals = int(mine.sum()), int(goal[mine].sum())
        arms.append(
            ArmResult(
                name,
                n,
                goals,
                wilson_interval(goals, n, level=level),
                mean_interval(revenue[mine], level=level) if revenue is not None and n else None,
            )
        )
    by_name = {result.arm: result for result in arms}
    primer = by_name[PRIMER]
    comparisons = []
    for other_name in (RANDOM, NO_MEMORY):
        other = by_name[other_name]
        if other.sends == 0:
            continue
        comparisons.append(
            Comparison(
                other_name,
                rate_difference(primer.goals, primer.sends, other.goals, other.sends, level=level),
                mean_difference(revenue[arm == PRIMER], revenue[arm == other_name], level=level)
                if revenue is not None
                else None,
                minimum_detectable_effect(
                    other.rate.value if other.sends else 0.5, other.sends, primer.sends
                ),
            )
        )
    off_policy = None
    random_rows = arm == RANDOM
    if primer_match is not None and eligible is not None and random_rows.any():
        k = np.asarray(eligible, dtype=np.float64)[random_rows]
        match = np.asarray(primer_match, dtype=bool)[random_rows]
        clusters = (
            np.asarray(customer)[random_rows]
            if customer is not None
            else np.arange(int(random_rows.sum()))
        )
        values = policy_values(
            reward=goal[random_rows],
            propensity=1.0 / np.maximum(k, 1.0),
            clusters=clusters,
            targets={
                "primer": Target(match.astype(np.float64)),
                "random": Target(1.0 / np.maximum(k, 1.0)),
            },
            reference="random",
            draws=draws,
            level=level,
            seed=seed,
        )
        primer_value, random_value = values[0], values[1]
        off_policy = OffPolicyValue(
            sends=int(random_rows.sum()),
            matches=primer_value.matches,
            ips=primer_value.estimates["ips"],
            snips=primer_value.estimates["snips"],
            random=random_value.estimates["snips"],
            difference=primer_value.differences["snips"],
        )
    return Uplift(arms, comparisons, off_policy)
