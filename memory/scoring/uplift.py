"""A campaign's uplift: goal rate and revenue per holdout arm, their differences, and the value
of Primer's policy estimated off-policy from the random arm.

The unit is a served decision matched to a send whose outcome window has closed: its reward is
whether the goal followed the send within the campaign's window (and the goal revenue in it).
Customers fall in arms by a stable hash, so the arms are randomised groups and their rates
compare directly. Intervals: Wilson for a rate, Newcombe's hybrid score interval for a difference
of two rates, the normal one (Welch) for revenue per send; the off-policy value is IPS and
self-normalised IPS with normal intervals from their influence functions. Everything is computed
from counts per (arm, eligible messages, Primer's choice served or not), so a page reads one
small aggregate, never the decisions one by one. When a difference's interval contains 0 the
page says "cannot tell yet" and shows the minimum detectable effect at the current counts (80%
power, 5% level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM
from memory.scoring.offpolicy import Estimate, minimum_detectable_effect

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


@dataclass(frozen=True)
class Moments:
    """Hold n, the sum and the sum of squares of a variable: enough for a mean and its sd."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Return the sample variance (NaN below two values)."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.squares - self.n * self.mean**2) / (self.n - 1))


def mean_interval(m: Moments, *, level: float = LEVEL) -> Estimate:
    """Return the mean with a normal interval (NaN bounds with fewer than two values)."""
    if m.n < 2:
        return Estimate(m.mean, math.nan, math.nan)
    half = _z(level) * math.sqrt(m.variance / m.n)
    return Estimate(m.mean, m.mean - half, m.mean + half)


def mean_difference(a: Moments, b: Moments, *, level: float = LEVEL) -> Estimate:
    """Return mean(a) - mean(b) with Welch's normal interval."""
    d = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return Estimate(d, math.nan, math.nan)
    half = _z(level) * math.sqrt(a.variance / a.n + b.variance / b.n)
    return Estimate(d, d - half, d + half)


ARM_ORDER = (PRIMER, RANDOM, NO_MEMORY)


@dataclass(frozen=True)
class Group:
    """Resolved, matched decisions of one arm that share their number of eligible messages and
    whether the served message was Primer's choice: the unit the page aggregates by."""

    arm: str
    eligible: int
    primer_served: bool
    sends: int
    goals: int
    revenue: float = 0.0  # sum of the goal revenue in the windows (0 where none)
    revenue_squares: float = 0.0
    revenue_reported: int = 0  # decisions whose goals carried a revenue


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
        return _excludes_zero(self.difference)


@dataclass(frozen=True)
class OffPolicyValue:
    """Hold Primer's policy valued on the random arm's sends, against the random policy."""

    sends: int
    matches: int  # random-arm sends that served what Primer would have chosen
    ips: Estimate
    snips: Estimate
    random: Estimate
    difference: Estimate  # SNIPS of Primer's choice minus the random arm's rate
    detectable: float

    @property
    def can_tell(self) -> bool:
        return _excludes_zero(self.difference)


@dataclass(frozen=True)
class Uplift:
    arms: list[ArmResult]
    comparisons: list[Comparison]
    off_policy: OffPolicyValue | None
    has_revenue: bool


def _excludes_zero(estimate: Estimate) -> bool:
    return not (math.isnan(estimate.low) or estimate.low <= 0.0 <= estimate.high)


def _moments(groups: list[Group]) -> Moments:
    return Moments(
        sum(g.sends for g in groups),
        sum(g.revenue for g in groups),
        sum(g.revenue_squares for g in groups),
    )


def off_policy_from_random(groups: list[Group], *, level: float = LEVEL) -> OffPolicyValue | None:
    """Value "serve Primer's choice" on the random arm's sends (propensity 1/K each).

    Weight w = K where the random arm happened to serve Primer's choice, else 0. IPS =
    mean(w r); SNIPS = sum(w r) / sum(w). Intervals are normal, from the influence functions
    w (r - SNIPS) / mean(w) and, for the difference from the random arm's own rate R,
    w (r - SNIPS) / mean(w) - (r - R); decisions are treated as independent.
    """
    rows = [g for g in groups if g.arm == RANDOM and g.sends]
    n = sum(g.sends for g in rows)
    if not n:
        return None
    cells = []  # (weight, reward, count): every decision of a group shares w; r is 0 or 1
    for g in rows:
        w = float(g.eligible) if g.primer_served else 0.0
        cells += [(w, 1.0, g.goals), (w, 0.0, g.sends - g.goals)]
    total_w = sum(w * c for w, _, c in cells)
    matches = sum(g.sends for g in rows if g.primer_served)
    random_rate = sum(r * c for _, r, c in cells) / n
    z = _z(level)
    ips_value = sum(w * r * c for w, r, c in cells) / n
    ips_var = sum(c * (w * r - ips_value) ** 2 for w, r, c in cells) / max(n - 1, 1)
    ips = Estimate(ips_value, *(ips_value + s * z * math.sqrt(ips_var / n) for s in (-1, 1)))
    random_var = random_rate * (1 - random_rate)
    random = Estimate(
        random_rate, *(random_rate + s * z * math.sqrt(random_var / n) for s in (-1, 1))
    )
    if total_w <= 0:
        nan = Estimate(math.nan, math.nan, math.nan)
        return OffPolicyValue(n, 0, ips, nan, random, nan, math.inf)
    snips_value = sum(w * r * c for w, r, c in cells) / total_w
    mean_w = total_w / n
    influence = [(w * (r - snips_value) / mean_w, r - random_rate, c) for w, r, c in cells]
    snips_var = sum(c * a * a for a, _, c in influence) / n
    diff_var = sum(c * (a - b) ** 2 for a, b, c in influence) / n
    snips = Estimate(
        snips_value, *(snips_value + s * z * math.sqrt(snips_var / n) for s in (-1, 1))
    )
    d = snips_value - random_rate
    difference = Estimate(d, *(d + s * z * math.sqrt(diff_var / n) for s in (-1, 1)))
    return OffPolicyValue(
        n,
        matches,
        ips,
        snips,
        random,
        difference,
        minimum_detectable_effect(random_rate, n, matches),
    )


def uplift_of(groups: list[Group], *, level: float = LEVEL) -> Uplift:
    """Estimate a campaign's uplift from its resolved, matched decisions, grouped."""
    has_revenue = any(g.revenue_reported for g in groups)
    arms, moments = [], {}
    for name in ARM_ORDER:
        mine = [g for g in groups if g.arm == name]
        sends, goals = sum(g.sends for g in mine), sum(g.goals for g in mine)
        moments[name] = _moments(mine)
        arms.append(
            ArmResult(
                name,
                sends,
                goals,
                wilson_interval(goals, sends, level=level),
                mean_interval(moments[name], level=level) if has_revenue and sends else None,
            )
        )
    by_name = {result.arm: result for result in arms}
    primer = by_name[PRIMER]
    comparisons = []
    for other_name in (RANDOM, NO_MEMORY):
        other = by_name[other_name]
        if other.sends == 0 or primer.sends == 0:
            continue
        comparisons.append(
            Comparison(
                other_name,
                rate_difference(primer.goals, primer.sends, other.goals, other.sends, level=level),
                mean_difference(moments[PRIMER], moments[other_name], level=level)
                if has_revenue
                else None,
                minimum_detectable_effect(other.rate.value, other.sends, primer.sends),
            )
        )
    return Uplift(arms, comparisons, off_policy_from_random(groups, level=level), has_revenue)
