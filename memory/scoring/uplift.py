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

A customer decided for several times is one randomised unit, not several: with per-arm sums over
customers of products of their totals (``Clusters``), every variance is the per-customer
(cluster-robust) one when that is wider than the one that treats decisions as independent, and
rates, differences and detectable effects use the effective counts n / design effect.
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


def wilson_interval(successes: float, n: float, *, level: float = LEVEL) -> Estimate:
    """Return the rate successes/n with Wilson's score interval (NaN when n is 0); effective
    (fractional) counts are allowed."""
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan)
    z, p = _z(level), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def rate_difference(
    successes_a: float, n_a: float, successes_b: float, n_b: float, *, level: float = LEVEL
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


def _mean_variance(m: Moments, clusters: Clusters | None) -> float:
    return _variance(m.variance / m.n, clusters, {"v": 1.0, "n": -m.mean}, m.n)


def mean_interval(
    m: Moments, *, clusters: Clusters | None = None, level: float = LEVEL
) -> Estimate:
    """Return the mean with a normal interval (NaN bounds with fewer than two values)."""
    if m.n < 2:
        return Estimate(m.mean, math.nan, math.nan)
    half = _z(level) * math.sqrt(_mean_variance(m, clusters))
    return Estimate(m.mean, m.mean - half, m.mean + half)


def mean_difference(
    a: Moments,
    b: Moments,
    *,
    clusters: tuple[Clusters | None, Clusters | None] = (None, None),
    level: float = LEVEL,
) -> Estimate:
    """Return mean(a) - mean(b) with Welch's normal interval (the arms hold other customers)."""
    d = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return Estimate(d, math.nan, math.nan)
    half = _z(level) * math.sqrt(_mean_variance(a, clusters[0]) + _mean_variance(b, clusters[1]))
    return Estimate(d, d - half, d + half)


ARM_ORDER = (PRIMER, RANDOM, NO_MEMORY)
# A customer's totals over their decisions in an arm: n sends, y goals, v revenue, and on the
# random arm a = the sum of w r and w = the sum of the off-policy weights.
CUSTOMER_TOTALS = ("n", "y", "v", "a", "w")


@dataclass(frozen=True)
class Clusters:
    """One arm's customers: how many, and over them the sums of products of their totals
    (``products["ny"]`` = sum over customers of n_c y_c; any order of the two letters)."""

    customers: int
    products: dict[str, float]

    def product(self, first: str, second: str) -> float:
        return self.products.get(first + second, self.products.get(second + first, 0.0))

    def spread(self, coefficients: dict[str, float]) -> float:
        """Return C/(C-1) times the sum over customers of (sum_k coef_k x_ck)^2: the squared
        per-customer sums of a linear influence (NaN under two customers)."""
        if self.customers < 2:
            return math.nan
        total = sum(
            a * b * self.product(first, second)
            for first, a in coefficients.items()
            for second, b in coefficients.items()
        )
        return max(0.0, total) * self.customers / (self.customers - 1)


def clusters_from_totals(totals: list[dict[str, float]]) -> Clusters:
    """Return the Clusters of customers given one dict of CUSTOMER_TOTALS per customer (what
    the database computes in one aggregate; this is its plain statement)."""
    products = {
        first + second: sum(row.get(first, 0.0) * row.get(second, 0.0) for row in totals)
        for i, first in enumerate(CUSTOMER_TOTALS)
        for second in CUSTOMER_TOTALS[i:]
    }
    return Clusters(len(totals), products)


def _variance(
    independent: float, clusters: Clusters | None, coefficients: dict[str, float], n: float
) -> float:
    """Return the variance of a mean over n decisions: the per-customer one from its influence
    (``coefficients`` on the customer totals) when wider than ``independent``, else that."""
    if clusters is None or n <= 0:
        return independent
    clustered = clusters.spread(coefficients) / (n * n)
    return independent if math.isnan(clustered) else max(independent, clustered)


def design_effect(successes: float, n: float, clusters: Clusters | None) -> float:
    """Return the variance of the rate over customers against the binomial one (at least 1)."""
    if n <= 0 or clusters is None:
        return 1.0
    p = successes / n
    independent = p * (1 - p) / n
    if independent <= 0:
        return 1.0
    return _variance(independent, clusters, {"y": 1.0, "n": -p}, n) / independent


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


def off_policy_from_random(
    groups: list[Group], *, clusters: Clusters | None = None, level: float = LEVEL
) -> OffPolicyValue | None:
    """Value "serve Primer's choice" on the random arm's sends (propensity 1/K each).

    Weight w = K where the random arm happened to serve Primer's choice, else 0. IPS =
    mean(w r); SNIPS = sum(w r) / sum(w). Intervals are normal, from the influence functions
    w (r - SNIPS) / mean(w) and, for the difference from the random arm's own rate R,
    w (r - SNIPS) / mean(w) - (r - R), summed per customer with the random arm's ``clusters``.
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

    def interval(value: float, variance: float) -> Estimate:
        return Estimate(value, *(value + s * z * math.sqrt(variance) for s in (-1, 1)))

    ips_value = sum(w * r * c for w, r, c in cells) / n
    ips_var = sum(c * (w * r - ips_value) ** 2 for w, r, c in cells) / max(n - 1, 1) / n
    ips = interval(ips_value, _variance(ips_var, clusters, {"a": 1.0, "n": -ips_value}, n))
    random_var = _variance(
        random_rate * (1 - random_rate) / n, clusters, {"y": 1.0, "n": -random_rate}, n
    )
    random = interval(random_rate, random_var)
    # The random arm's effective sends, which the detectable difference is computed at.
    effective = random_rate * (1 - random_rate) / random_var if random_var > 0 else n
    if total_w <= 0:
        nan = Estimate(math.nan, math.nan, math.nan)
        return OffPolicyValue(n, 0, ips, nan, random, nan, math.inf)
    snips_value = sum(w * r * c for w, r, c in cells) / total_w
    mean_w = total_w / n
    influence = [(w * (r - snips_value) / mean_w, r - random_rate, c) for w, r, c in cells]
    snips_var = _variance(
        sum(c * a * a for a, _, c in influence) / n / n,
        clusters,
        {"a": 1.0 / mean_w, "w": -snips_value / mean_w},
        n,
    )
    diff_var = _variance(
        sum(c * (a - b) ** 2 for a, b, c in influence) / n / n,
        clusters,
        {"a": 1.0 / mean_w, "w": -snips_value / mean_w, "y": -1.0, "n": random_rate},
        n,
    )
    return OffPolicyValue(
        n,
        matches,
        ips,
        interval(snips_value, snips_var),
        random,
        interval(snips_value - random_rate, diff_var),
        minimum_detectable_effect(random_rate, effective, matches * effective / n),
    )


def uplift_of(
    groups: list[Group],
    *,
    clusters: dict[str, Clusters] | None = None,
    level: float = LEVEL,
) -> Uplift:
    """Estimate a campaign's uplift from its resolved, matched decisions, grouped; with each
    arm's ``clusters``, a customer's several decisions count as one randomised unit."""
    clusters = clusters or {}
    has_revenue = any(g.revenue_reported for g in groups)
    arms, moments, effective = [], {}, {}
    for name in ARM_ORDER:
        mine = [g for g in groups if g.arm == name]
        sends, goals = sum(g.sends for g in mine), sum(g.goals for g in mine)
        moments[name] = _moments(mine)
        deff = design_effect(goals, sends, clusters.get(name))
        effective[name] = (goals / deff, sends / deff)
        arms.append(
            ArmResult(
                name,
                sends,
                goals,
                wilson_interval(*effective[name], level=level),
                mean_interval(moments[name], clusters=clusters.get(name), level=level)
                if has_revenue and sends
                else None,
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
                rate_difference(*effective[PRIMER], *effective[other_name], level=level),
                mean_difference(
                    moments[PRIMER],
                    moments[other_name],
                    clusters=(clusters.get(PRIMER), clusters.get(other_name)),
                    level=level,
                )
                if has_revenue
                else None,
                minimum_detectable_effect(
                    other.rate.value, effective[other_name][1], effective[PRIMER][1]
                ),
            )
        )
    return Uplift(
        arms,
        comparisons,
        off_policy_from_random(groups, clusters=clusters.get(RANDOM), level=level),
        has_revenue,
    )
