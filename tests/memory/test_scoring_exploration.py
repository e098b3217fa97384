"""Message-level Thompson propensities with a floor, the served choice, and holdout arms."""

from statistics import NormalDist

import numpy as np
import pytest

from memory.scoring.exploration import (
    NO_MEMORY,
    PRIMER,
    RANDOM,
    arm_of,
    assign_arm,
    choose,
    epsilon_propensities,
    explore_propensities,
    thompson_shares,
    top_propensities,
    uniform_propensities,
    unit_hash,
)


def test_it_gives_every_group_propensities_summing_to_one_above_the_floor():
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 12, size=200)
    group = np.repeat(np.arange(200), sizes)
    score = rng.normal(size=group.size) * 2
    spread = rng.uniform(0, 1.5, size=group.size)
    propensity = explore_propensities(group, score, spread, seed=5)
    sums = np.bincount(group, propensity)
    assert sums == pytest.approx(np.ones(200))
    assert propensity.min() >= 0.01 - 1e-12
    # Seeded: the same draws give the same propensities.
    assert np.array_equal(propensity, explore_propensities(group, score, spread, seed=5))


def test_it_wins_as_often_as_the_normal_difference_says():
    # Two messages, scores 1 and 0, spreads 1 and 1: P(first wins) = Phi(1 / sqrt(2)) = 0.760.
    shares = thompson_shares(np.zeros(2), np.array([1.0, 0.0]), np.array([1.0, 1.0]), seed=1)
    assert shares[0] == pytest.approx(NormalDist().cdf(1 / 2**0.5), abs=0.04)
    assert shares.sum() == pytest.approx(1.0)


def test_it_keeps_the_floor_through_a_uniform_mix_without_spread():
    # No spread: the top message wins every draw; the mix of 0.01 x 4 gives the rest 0.01 each.
    propensity = explore_propensities(np.zeros(4), np.array([3.0, 2.0, 1.0, 0.0]), np.zeros(4))
    assert propensity.tolist() == pytest.approx([0.97, 0.01, 0.01, 0.01])


def test_epsilon_serves_the_best_but_for_its_share_with_the_floor_under_it():
    group = np.array([0, 0, 0, 0, 1, 1])
    score = np.array([0.1, 0.9, 0.9, -2.0, 5.0, 1.0])
    # Group 0: g = 0.2 over K = 4, the first of the tied best gets 1 - 0.2 + 0.05.
    propensity = epsilon_propensities(group, score, share=0.2)
    assert propensity.tolist() == pytest.approx([0.05, 0.85, 0.05, 0.05, 0.9, 0.1])
    assert np.bincount(group, propensity) == pytest.approx([1.0, 1.0])
    # A share below the floor's mix (0.01 K) is lifted to it; a share of 0 is the floor.
    big = np.zeros(150, dtype=int)
    floored = epsilon_propensities(big, np.arange(150.0), share=0.0)
    assert floored.min() == pytest.approx(1 / 150)  # K > 100: the mix is the uniform choice
    four = epsilon_propensities(np.zeros(4), np.array([3.0, 2.0, 1.0, 0.0]), share=0.0)
    assert four.tolist() == pytest.approx([0.97, 0.01, 0.01, 0.01])


def test_it_knows_the_random_arms_and_the_top_policies():
    group = np.array([7, 7, 7, 9, 9])
    assert uniform_propensities(group).tolist() == pytest.approx([1 / 3] * 3 + [0.5] * 2)
    # Ties go to the group's earlier row.
    assert top_propensities(group, np.array([1.0, 2.0, 2.0, 0.0, 0.0])).tolist() == [
        0,
        1,
        0,
        1,
        0,
    ]


def test_it_serves_each_message_as_often_as_its_propensity():
    group = np.zeros(3, dtype=int)
    propensity = np.array([0.7, 0.2, 0.1])
    picks = [
        int(choose(group, propensity, np.array([u]))[0])
        for u in np.random.default_rng(0).random(20_000)
    ]
    assert np.bincount(picks, minlength=3) / 20_000 == pytest.approx(propensity, abs=0.01)
    # Groups are independent: one uniform each, in group order.
    both = choose(np.array([0, 0, 1, 1]), np.array([0.5, 0.5, 0.9, 0.1]), np.array([0.6, 0.95]))
    assert both.tolist() == [1, 3]


def test_it_assigns_arms_by_a_stable_hash_in_the_given_shares():
    shares = {RANDOM: 0.2, NO_MEMORY: 0.1}
    # A SHA-256 of the ids: the same number in every process and on every machine.
    assert unit_hash("arm", 1, 2, 3) == pytest.approx(0.505603, abs=1e-6)
    arms = [assign_arm(1, 2, customer, shares) for customer in range(20_000)]
    counts = {arm: arms.count(arm) / len(arms) for arm in (PRIMER, RANDOM, NO_MEMORY)}
    assert counts[RANDOM] == pytest.approx(0.2, abs=0.01)
    assert counts[NO_MEMORY] == pytest.approx(0.1, abs=0.01)
    assert counts[PRIMER] == pytest.approx(0.7, abs=0.01)
    assert [arm_of(x, shares) for x in (0.0, 0.1999, 0.2, 0.2999, 0.3001)] == [
        RANDOM,
        RANDOM,
        NO_MEMORY,
        NO_MEMORY,
        PRIMER,
    ]
    # Another campaign shuffles the same customers anew.
    other = [assign_arm(1, 3, customer, shares) for customer in range(2_000)]
    assert other != arms[:2_000]
