"""Properties of the scoring functions over generated inputs (Hypothesis), not hand-picked ones.

Rates and shares stay in [0, 1], every credible interval holds its estimate, more evidence at
the same rate never widens an interval, and empty or degenerate input gives no NaN.
"""

import numpy as np
import polars as pl
import pytest

hypothesis = pytest.importorskip("hypothesis")  # pinned in requirements.txt
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from memory.scoring.associative import (  # noqa: E402
    label_catalogue,
    label_posteriors,
    moment_prior,
    thompson_shares,
)
from memory.scoring.baseline import frequency_rates, gamma_shape  # noqa: E402
from memory.scoring.frames import EngineConfig  # noqa: E402

BOUNDED = settings(max_examples=100, deadline=None)

counts = st.floats(0.0, 1e4, allow_nan=False)
rates = st.floats(1e-4, 1.0 - 1e-4, allow_nan=False)
exposure_lists = st.lists(st.tuples(counts, st.floats(0.0, 1.0)), max_size=30)


@BOUNDED
@given(exposure_lists, st.booleans())
def test_it_keeps_the_pooled_rate_a_rate_and_the_prior_strength_in_bounds(pairs, with_expected):
    exposures = np.array([n for n, _ in pairs], dtype=np.float64)
    conversions = np.array([n * share for n, share in pairs], dtype=np.float64)
    expected = np.full(exposures.size, 0.3) if with_expected else None
    pooled, kappa = moment_prior(exposures, conversions, expected, lower=2.0, upper=500.0)
    assert 0.0 <= pooled <= 1.0
    assert 2.0 <= kappa <= 500.0


LABELS = pl.DataFrame(
    {"message": [0, 0, 0], "label_set": ["offer", "offer", "offer"], "label": ["a", "b", "c"]}
)
CATALOGUE = label_catalogue(LABELS)


def posteriors(successes, failures, lift, kappa, baseline, config=None):
    """Weights for one customer over one set of three labels, from the given counts."""
    size = len(successes)
    frame = pl.DataFrame(
        {
            "customer": [0] * size,
            "label_id": list(range(size)),
            "exposures": [s + f for s, f in zip(successes, failures, strict=True)],
            "conversions": list(successes),
            "successes": list(successes),
            "failures": list(failures),
        }
    )
    priors = CATALOGUE.with_columns(
        pl.lit(0.3).alias("pooled_rate"),
        pl.Series("population_lift", lift),
        pl.Series("kappa", kappa),
    )
    return label_posteriors(frame, priors, np.array([baseline]), config or EngineConfig())


label_counts = st.lists(st.tuples(counts, counts), min_size=1, max_size=3)
lifts = st.lists(st.floats(0.01, 50.0), min_size=3, max_size=3)
strengths = st.lists(st.floats(2.0, 500.0), min_size=3, max_size=3)


@BOUNDED
@given(label_counts, lifts, strengths, rates)
def test_it_keeps_rates_and_weights_in_unit_range_and_intervals_around_the_rate(
    observed, lift, kappa, baseline
):
    weights = posteriors([s for s, _ in observed], [f for _, f in observed], lift, kappa, baseline)
    columns = ("rate", "weight", "weight_low", "weight_high", "thompson_share", "lift")
    frame = weights.select(*columns, "association")
    assert not np.isnan(frame.to_numpy()).any()
    rate = weights["rate"].to_numpy()
    assert ((rate >= 0) & (rate <= 1)).all()
    # The weight is the posterior mean, inside its interval; the Thompson shares sum to one.
    weight = weights["weight"].to_numpy()
    low, high = weights["weight_low"].to_numpy(), weights["weight_high"].to_numpy()
    assert ((low >= 0) & (high <= 1)).all()
    assert ((low <= weight) & (weight <= high)).all()
    share = weights["thompson_share"].to_numpy()
    assert ((share >= 0) & (share <= 1)).all() and share.sum() == pytest.approx(1.0)


@BOUNDED
@given(counts, counts, st.floats(0.0, 1e5), st.floats(2.0, 500.0), rates)
def test_it_never_widens_an_interval_with_more_evidence_at_the_same_rate(
    successes, failures, more, kappa, baseline
):
    def first(extra_successes: float, extra_failures: float):
        weights = posteriors(
            [successes + extra_successes],
            [failures + extra_failures],
            [1.0] * 3,
            [kappa] * 3,
            baseline,
        )
        return weights.filter(pl.col("label_id") == 0)

    before = first(0.0, 0.0)
    rate = before["rate"].item()
    # `more` sends converting at the estimate itself: the rate stays, the evidence grows.
    after = first(rate * more, (1.0 - rate) * more)
    assert after["rate"].item() == pytest.approx(rate)
    width_before = before["weight_high"].item() - before["weight_low"].item()
    width_after = after["weight_high"].item() - after["weight_low"].item()
    assert width_after <= width_before + 1e-9


def test_it_gives_an_empty_frame_for_no_counts():
    empty = pl.DataFrame(
        schema={
            "customer": pl.Int64,
            "label_id": pl.Int64,
            "exposures": pl.Float64,
            "conversions": pl.Float64,
            "successes": pl.Float64,
            "failures": pl.Float64,
        }
    )
    priors = CATALOGUE.with_columns(
        pl.lit(0.3).alias("pooled_rate"),
        pl.lit(1.0).alias("population_lift"),
        pl.lit(2.0).alias("kappa"),
    )
    assert label_posteriors(empty, priors, np.array([0.1]), EngineConfig()).height == 0
    assert moment_prior(np.array([]), np.array([])) == (0.5, 2.0)


@BOUNDED
@given(
    st.lists(
        st.tuples(st.floats(-20.0, 20.0), st.floats(0.0, 10.0), st.integers(0, 5)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 2**31),
)
def test_it_splits_every_group_s_draws_into_shares_that_sum_to_one(rows, seed):
    rows = sorted(rows, key=lambda row: row[2])
    mean = np.array([m for m, _, _ in rows])
    sd = np.array([s for _, s, _ in rows])
    groups = np.array([g for _, _, g in rows])
    shares = thompson_shares(mean, sd, groups, 64, seed)
    assert not np.isnan(shares).any()
    assert ((shares >= 0) & (shares <= 1)).all()
    for group in np.unique(groups):
        assert shares[groups == group].sum() == pytest.approx(1.0)


@BOUNDED
@given(
    st.lists(st.tuples(st.integers(0, 1000), st.floats(0.0, 1e5), rates), max_size=30),
    st.floats(0.01, 1000.0),
)
def test_it_keeps_goal_rates_finite_and_non_negative(rows, shape):
    goals = np.array([g for g, _, _ in rows], dtype=np.float64)
    hours = np.array([h for _, h, _ in rows], dtype=np.float64)
    prior = np.array([p for _, _, p in rows], dtype=np.float64)
    rate = frequency_rates(goals, hours, prior, shape)
    assert np.isfinite(rate).all() and (rate >= 0).all()
    fitted = gamma_shape(goals, prior * hours, 0.1, 1000.0)
    assert 0.1 <= fitted <= 1000.0
