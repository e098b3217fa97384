"""Per customer x label Beta posteriors, their empirical-Bayes prior and propensities."""

import math

import numpy as np
import polars as pl
import pytest

from memory.scoring.associative import (
    customer_label_counts,
    label_catalogue,
    label_posteriors,
    moment_prior,
    thompson_shares,
)
from memory.scoring.frames import EngineConfig


def test_it_matches_the_prior_by_moments_after_removing_binomial_noise():
    pooled, kappa = moment_prior(np.array([10.0, 10.0]), np.array([2.0, 8.0]))
    # s^2 = (10 * 0.09 + 10 * 0.09 - 2 * 0.25) / 20 = 0.065; kappa = 0.25 / 0.065 - 1.
    assert pooled == 0.5
    assert kappa == pytest.approx(0.25 / 0.065 - 1.0)


def test_it_clips_the_prior_strength_when_the_spread_is_only_noise():
    _, kappa = moment_prior(np.array([10.0, 10.0]), np.array([5.0, 5.0]), upper=300.0)
    assert kappa == 300.0


LABELS = pl.DataFrame(
    {"message": [0, 0, 1], "label_set": ["offer", "tone", "offer"], "label": ["a", "x", "b"]}
)


def resolved(rows):
    return pl.DataFrame(
        rows, schema=["customer", "message", "t", "goal"], orient="row"
    ).with_columns(pl.col("goal").cast(pl.Int8))


def test_it_discounts_old_outcomes_like_the_running_update():
    catalogue = label_catalogue(LABELS)
    config = EngineConfig(association_half_life_h=720.0, association_half_life_sends=math.inf)
    counts = customer_label_counts(
        resolved([(0, 0, 0.0, 1), (0, 0, 720.0, 0)]), LABELS, catalogue, config, 1440.0
    )
    # S <- g S + r per send: S = 1 * 0.5 * 0.5 = 0.25; F = (0 * 0.5 + 1) * 0.5 = 0.5.
    offer_a = counts.filter(pl.col("label_id") == 0)
    assert offer_a["successes"].item() == pytest.approx(0.25)
    assert offer_a["failures"].item() == pytest.approx(0.5)
    assert offer_a["exposures"].item() == 2.0


def test_it_halves_an_outcome_with_every_half_life_of_later_sends_not_of_hours():
    catalogue = label_catalogue(LABELS)
    config = EngineConfig(association_half_life_sends=2.0)
    # Three sends of message 0, a year apart: only how many came later counts.
    sends = resolved([(0, 0, 0.0, 1), (0, 0, 8760.0, 1), (0, 0, 17520.0, 0)])
    counts = customer_label_counts(sends, LABELS, catalogue, config, 20000.0)
    offer_a = counts.filter(pl.col("label_id") == 0)
    # S = 0.5 ** (2 / 2) + 0.5 ** (1 / 2) = 0.5 + 0.7071; F = 0.5 ** 0 = 1.
    assert offer_a["successes"].item() == pytest.approx(0.5 + 0.5**0.5)
    assert offer_a["failures"].item() == pytest.approx(1.0)
    # Another customer's sends do not count as later ones.
    other = resolved([(1, 0, 9000.0, 1)])
    both = customer_label_counts(pl.concat([sends, other]), LABELS, catalogue, config, 20000.0)
    assert both.filter(pl.col("customer") == 1)["successes"][0] == pytest.approx(1.0)


def test_it_credits_every_label_of_a_multi_label_message():
    catalogue = label_catalogue(LABELS)
    counts = customer_label_counts(
        resolved([(0, 0, 0.0, 1)]), LABELS, catalogue, EngineConfig(), 100.0
    )
    assert sorted(counts["label_id"].to_list()) == [0, 2]  # offer/a and tone/x, not offer/b
    assert counts["conversions"].to_list() == [1.0, 1.0]


def test_it_adds_discounted_counts_to_a_baseline_centred_prior():
    catalogue = label_catalogue(LABELS)
    config = EngineConfig(association_half_life_h=720.0, association_half_life_sends=math.inf)
    counts = customer_label_counts(
        resolved([(0, 0, 0.0, 1), (0, 0, 720.0, 0)]), LABELS, catalogue, config, 1440.0
    )
    priors = catalogue.with_columns(
        pl.lit(0.3).alias("pooled_rate"),
        pl.lit(1.5).alias("population_lift"),
        pl.lit(10.0).alias("kappa"),
    )
    weights = label_posteriors(counts, priors, np.array([0.2]), config)
    offer_a = weights.filter((pl.col("label_set") == "offer") & (pl.col("label") == "a"))
    # Prior mean 0.2 * 1.5 = 0.3: alpha = 10 * 0.3 + 0.25, beta = 10 * 0.7 + 0.5.
    assert offer_a["alpha"].item() == pytest.approx(3.25)
    assert offer_a["beta"].item() == pytest.approx(7.5)
    assert offer_a["evidence"].item() == pytest.approx(10.75)
    assert offer_a["lift"].item() == pytest.approx((3.25 / 10.75) / 0.2)
    # The unseen label of the same set is present, at its prior.
    offer_b = weights.filter(pl.col("label") == "b")
    assert offer_b["alpha"].item() == pytest.approx(3.0)
    # The weight is the posterior mean, inside its interval; exploration shares sum to one.
    assert offer_a["weight"].item() == pytest.approx(3.25 / 10.75)
    assert offer_a["weight_low"].item() < 3.25 / 10.75 < offer_a["weight_high"].item()
    shares = weights.filter(pl.col("label_set") == "offer")["thompson_share"].to_numpy()
    assert shares.sum() == pytest.approx(1.0)


def test_it_splits_draws_evenly_between_identical_posteriors():
    shares = thompson_shares(
        np.array([0.0, 0.0, 1.0]), np.array([1.0, 1.0, 1.0]), np.array([0, 0, 1]), 256, 0
    )
    assert shares[:2] == pytest.approx([0.5, 0.5], abs=0.08)
    assert shares[2] == 1.0


def test_it_gives_nearly_every_draw_to_a_clearly_better_label():
    shares = thompson_shares(np.array([3.0, -3.0]), np.array([0.2, 0.2]), np.array([0, 0]), 256, 0)
    assert shares.tolist() == [1.0, 0.0]


def test_it_draws_the_same_shares_twice():
    rng = np.random.default_rng(1)
    mean, sd = rng.normal(size=300), rng.uniform(0.1, 1.0, 300)
    groups = np.repeat(np.arange(100), 3)
    assert np.array_equal(
        thompson_shares(mean, sd, groups, 128, 7), thompson_shares(mean, sd, groups, 128, 7)
    )


def shares_by_argmax(mean, sd, groups, draws, seed):
    """Thompson shares the plain way: every group's draws at once, the first maximum wins."""
    from scipy.special import ndtri

    quantiles = ndtri((np.arange(draws) + 0.5) / draws)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, groups.size])
    rng = np.random.default_rng(seed)
    z = quantiles[np.stack([rng.permutation(draws) for _ in range(int(sizes.max()))])]
    shares = np.empty(groups.size)
    for start, size in zip(starts, sizes, strict=True):
        drawn = mean[start : start + size, None] + sd[start : start + size, None] * z[:size]
        wins = np.bincount(drawn.argmax(axis=0), minlength=size)
        shares[start : start + size] = wins / draws
    return shares


def test_its_shares_do_not_depend_on_the_block_size(monkeypatch):
    from memory.scoring import associative

    rng = np.random.default_rng(3)
    widths = rng.choice([1, 2, 3, 5], size=200)
    groups = np.repeat(np.arange(widths.size), widths)
    mean, sd = rng.normal(size=groups.size), rng.uniform(0.1, 1.0, groups.size)
    whole = thompson_shares(mean, sd, groups, 64, 5)
    monkeypatch.setattr(associative, "DRAW_BLOCK_CELLS", 64 * 3)  # three groups a block

    blocked = thompson_shares(mean, sd, groups, 64, 5)

    assert np.array_equal(blocked, whole)
    assert np.array_equal(whole, shares_by_argmax(mean, sd, groups, 64, 5))
    group_totals = np.bincount(groups, weights=blocked)
    assert np.allclose(group_totals, 1.0)  # the last label's share is what the others left
    alone = (np.cumsum(widths) - widths)[widths == 1]
    assert np.all(blocked[alone] == 1.0)  # a label alone in its set wins every draw


def test_it_computes_the_trigamma_to_double_precision():
    from scipy.special import polygamma

    from memory.scoring.associative import trigamma

    x = np.concatenate([np.logspace(-4, 6, 2_000), [1.0, 0.5, 12.0]])
    assert trigamma(x) == pytest.approx(polygamma(1, x), rel=4e-15)
    assert trigamma(np.array([1.0]))[0] == pytest.approx(np.pi**2 / 6, rel=1e-15)
