"""Each customer's own goal baseline, from free time, shrunk by a Gamma prior."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from memory.scoring.baseline import (
    covered_hours,
    customer_baselines,
    fit_baseline_prior,
    frequency_rates,
    gamma_shape,
)
from memory.scoring.frames import EngineConfig, normalise_events
from memory.scoring.outcomes import send_outcomes


def test_it_measures_the_union_of_send_windows_clipped_at_the_horizon():
    sends = pl.DataFrame({"customer": [0, 0, 0], "t": [0.0, 24.0, 200.0]})
    covered = covered_hours(sends, 72.0, 250.0)
    # [0, 96) and [200, 250): 96 + 50 hours.
    assert covered["covered_h"].to_list() == [146.0]


def test_it_matches_the_gamma_shape_to_the_overdispersion():
    # sum(mu^2) = 8, sum((n - mu)^2 - mu) = 2 + 2 = 4.
    assert gamma_shape(np.array([0.0, 4.0]), np.array([2.0, 2.0]), 0.5, 100.0) == 2.0


def test_it_uses_the_upper_bound_without_overdispersion():
    assert gamma_shape(np.array([2.0, 2.0]), np.array([2.0, 2.0]), 0.5, 100.0) == 100.0


def test_it_counts_only_goals_outside_send_windows_as_free():
    events = normalise_events(
        pl.DataFrame(
            {
                "customer": [0, 0, 0, 0, 1],
                "name": ["Message Sent", "Order Completed", "Order Completed", "Page", "Page"],
                "t": [0.0, 10.0, 100.0, 199.0, 0.0],
                "message": [0, None, None, None, None],
            }
        )
    )
    config = EngineConfig()
    sends = send_outcomes(events, config, 200.0)
    baselines = customer_baselines(events, sends, config, 200.0, 2)
    assert baselines["goals"].to_list() == [2.0, 0.0]
    assert baselines["free_goals"].to_list() == [1.0, 0.0]
    assert baselines["free_h"].to_list() == [128.0, 200.0]
    assert baselines["hours_since_goal"].to_list() == [100.0, None]
    rate = baselines["baseline_rate_h"].to_numpy()
    assert rate[0] > rate[1] > 0.0
    p = baselines["baseline_rate"].to_numpy()
    assert p == pytest.approx(-np.expm1(-rate * 72.0))


def test_it_shrinks_the_frequency_to_the_segment_rate_by_the_shape():
    # Shape 2 at a prior of 0.01 per hour: 2 pseudo-goals in 200 pseudo-hours.
    rates = frequency_rates(
        np.array([0.0, 4.0, 4.0]), np.array([100.0, 100.0, 0.0]), np.array([0.01] * 3), 2.0
    )
    assert rates == pytest.approx([2 / 300, 6 / 300, 6 / 200])


def test_it_bins_numeric_traits_in_the_configured_quantiles_for_the_segment_prior():
    # 100 customers joined over a year; the last tenth to join buy twice as often.
    n = 100
    joined = 2017.0 + np.arange(n) / n
    goals = np.where(np.arange(n) >= 90, 4.0, 2.0)
    counts = pl.DataFrame(
        {
            "customer": np.arange(n),
            "goals": goals,
            "observed_h": np.full(n, 100.0),
            "free_goals": goals,
            "free_h": np.full(n, 100.0),
        }
    )
    traits = pl.DataFrame({"customer": np.arange(n), "member_year": joined})
    deciles = fit_baseline_prior(counts, EngineConfig(), traits)
    quintiles = fit_baseline_prior(counts, replace(EngineConfig(), trait_quantile_bins=5), traits)
    edges = deciles.traits.columns[0]["edges"]
    assert edges == pytest.approx(np.quantile(joined, np.arange(1, 10) / 10))
    assert len(quintiles.traits.columns[0]["edges"]) == 4
    # Deciles give the last tenth its own rate (0.04 an hour against 0.02); quintiles blur it
    # with the tenth before (0.03).
    by_decile = deciles.segment_rates(traits, n)
    by_quintile = quintiles.segment_rates(traits, n)
    assert by_decile[:90] == pytest.approx(0.02, rel=0.05)
    assert by_decile[90:] == pytest.approx(0.04, rel=0.05)
    assert by_quintile[80:] == pytest.approx(0.03, rel=0.05)
