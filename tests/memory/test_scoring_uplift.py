"""Uplift per holdout arm: Wilson and Newcombe intervals, revenue, MDE, off-policy from random."""

import math

import pytest

from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM
from memory.scoring.offpolicy import minimum_detectable_effect
from memory.scoring.uplift import (
    Group,
    Moments,
    clusters_from_totals,
    mean_interval,
    off_policy_from_random,
    rate_difference,
    uplift_of,
    wilson_interval,
)


def test_it_matches_newcombes_worked_examples():
    # Newcombe (1998): 81/263 has the Wilson interval 0.2553-0.3662 ...
    one = wilson_interval(81, 263)
    assert (one.low, one.high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    # ... and 56/70 - 48/80 = 0.2000 with the hybrid score interval 0.0524-0.3339.
    d = rate_difference(56, 70, 48, 80)
    assert (d.value, d.low, d.high) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)
    assert math.isnan(wilson_interval(0, 0).value)


def test_it_gives_the_mean_revenue_a_normal_interval_from_moments():
    # Values 0, 10, 20: mean 10, sd 10, half-width 1.96 x 10 / sqrt(3) = 11.32.
    estimate = mean_interval(Moments(3, 30.0, 500.0))
    assert (estimate.value, estimate.low, estimate.high) == pytest.approx(
        (10.0, -1.316, 21.316), abs=1e-3
    )


def test_it_values_primers_choice_from_the_random_arm():
    # Two messages each time (propensity 1/2). Where the random arm happened to serve Primer's
    # choice (100 sends) 60 reached the goal; elsewhere (100) 40.
    groups = [
        Group(RANDOM, 2, True, 100, 60),
        Group(RANDOM, 2, False, 100, 40),
    ]
    value = off_policy_from_random(groups)
    assert (value.sends, value.matches) == (200, 100)
    assert value.ips.value == pytest.approx(0.6)  # (2 x 60) / 200
    assert value.snips.value == pytest.approx(0.6)  # (2 x 60) / (2 x 100)
    assert value.random.value == pytest.approx(0.5)
    assert value.difference.value == pytest.approx(0.1)
    # Influence of the difference per send, w (r - 0.6) / mean(w) - (r - 0.5), mean(w) = 1:
    # matched goals 0.8 - 0.5 (x60), matched misses -1.2 + 0.5 (x40), unmatched +-0.5 (x100);
    # mean square (60 x 0.09 + 40 x 0.49 + 100 x 0.25) / 200 = 0.25.
    half = 1.959964 * math.sqrt(0.25 / 200)
    assert (value.difference.low, value.difference.high) == pytest.approx(
        (0.1 - half, 0.1 + half), abs=1e-6
    )
    assert value.detectable == pytest.approx(minimum_detectable_effect(0.5, 200, 100))


def test_it_compares_primer_with_each_holdout_and_says_when_it_cannot_tell():
    groups = [
        Group(
            PRIMER,
            3,
            True,
            1000,
            400,
            revenue=4000.0,
            revenue_squares=40000.0,
            revenue_reported=400,
        ),
        Group(RANDOM, 3, True, 100, 40, revenue=400.0, revenue_squares=4000.0, revenue_reported=40),
        Group(
            RANDOM, 3, False, 200, 50, revenue=500.0, revenue_squares=5000.0, revenue_reported=50
        ),
        Group(NO_MEMORY, 3, True, 300, 117),
    ]
    uplift = uplift_of(groups)
    rates = {arm.arm: arm.rate.value for arm in uplift.arms}
    assert rates == pytest.approx({PRIMER: 0.4, RANDOM: 0.3, NO_MEMORY: 0.39})
    random, no_memory = uplift.comparisons
    assert random.difference.value == pytest.approx(0.1)
    assert random.can_tell  # 0.1 over 1,000 and 300 sends is outside the noise
    assert no_memory.difference.value == pytest.approx(0.01)
    assert not no_memory.can_tell
    assert no_memory.detectable == pytest.approx(minimum_detectable_effect(0.39, 300, 1000))
    assert uplift.has_revenue
    assert {arm.arm: arm.revenue.value for arm in uplift.arms if arm.revenue} == pytest.approx(
        {PRIMER: 4.0, RANDOM: 3.0, NO_MEMORY: 0.0}
    )
    assert random.revenue_difference.value == pytest.approx(1.0)
    # The off-policy value: K = 3 where Primer's choice was served (40 of 100 goals).
    assert uplift.off_policy.snips.value == pytest.approx(0.4)
    assert uplift.off_policy.ips.value == pytest.approx(3 * 40 / 300)


def test_it_reports_nothing_to_compare_without_sends():
    uplift = uplift_of([])
    assert [arm.sends for arm in uplift.arms] == [0, 0, 0]
    assert uplift.comparisons == [] and uplift.off_policy is None and not uplift.has_revenue


def repeated(customers: list[tuple[int, int]], times: int) -> list[dict[str, float]]:
    """Per-customer totals where each customer's (sends, goals) is their one decision repeated."""
    return [{"n": n * times, "y": y * times} for n, y in customers]


def test_a_customer_decided_for_many_times_counts_about_once():
    # 200 customers, 80 of them reached the goal; each was decided for 5 times with the same
    # outcome. Treated as independent that is 1,000 sends; per customer it is about 200.
    people = [(1, 1)] * 80 + [(1, 0)] * 120
    groups = [Group(PRIMER, 2, True, 1000, 400), Group(RANDOM, 2, False, 1000, 300)]
    clusters = {
        PRIMER: clusters_from_totals(repeated(people, 5)),
        RANDOM: clusters_from_totals(repeated([(1, 1)] * 60 + [(1, 0)] * 140, 5)),
    }
    naive, clustered = uplift_of(groups), uplift_of(groups, clusters=clusters)
    primer = clustered.arms[0]
    # Design effect k C / (C - 1): the effective sends are C - 1 = 199.
    expected = wilson_interval(0.4 * 199, 199)
    assert (primer.rate.value, primer.rate.low, primer.rate.high) == pytest.approx(
        (expected.value, expected.low, expected.high)
    )
    assert primer.sends == 1000  # the counts shown stay the decisions
    width = [c.comparisons[0].difference for c in (naive, clustered)]
    assert width[1].high - width[1].low > 2 * (width[0].high - width[0].low)
    assert not naive.comparisons[0].difference.low <= 0 <= naive.comparisons[0].difference.high
    assert clustered.comparisons[0].detectable > 2 * naive.comparisons[0].detectable


def test_one_decision_per_customer_keeps_the_independent_intervals_but_for_c_over_c_minus_1():
    people = [(1, 1)] * 30 + [(1, 0)] * 70
    groups = [Group(PRIMER, 2, True, 100, 30)]
    one = uplift_of(groups, clusters={PRIMER: clusters_from_totals(repeated(people, 1))})
    expected = wilson_interval(30 * 99 / 100, 99)
    assert (one.arms[0].rate.low, one.arms[0].rate.high) == pytest.approx(
        (expected.low, expected.high)
    )


def test_the_off_policy_value_sums_its_influence_per_customer():
    # The random arm of the off-policy test above, each customer decided for twice alike:
    # the difference's variance doubles (about), so its half-width grows by about sqrt(2).
    groups = [Group(RANDOM, 2, True, 200, 120), Group(RANDOM, 2, False, 200, 80)]
    totals = (
        [{"n": 2, "y": 2, "a": 4, "w": 4}] * 60
        + [{"n": 2, "y": 0, "a": 0, "w": 4}] * 40
        + [{"n": 2, "y": 2, "a": 0, "w": 0}] * 40
        + [{"n": 2, "y": 0, "a": 0, "w": 0}] * 60
    )
    naive = off_policy_from_random(groups)
    clustered = off_policy_from_random(groups, clusters=clusters_from_totals(totals))
    assert clustered.difference.value == pytest.approx(naive.difference.value)
    # Per customer: influence sums are twice the per-send ones, over 200 customers:
    # 200/199 x sum(4 x influence^2) / 400^2 = 200/199 x 4 x 50 / 160000 (mean square 0.25).
    half = 1.959964 * math.sqrt(200 / 199 * 4 * 0.25 * 200 / 400**2)
    assert clustered.difference.high - clustered.difference.value == pytest.approx(half, rel=1e-6)
    assert clustered.detectable > naive.detectable
