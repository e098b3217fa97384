"""Priming: odds ratios with intervals, lift, within-flow chains and planted primers."""

import math

import polars as pl
import pytest

from memory.scoring.frames import EngineConfig, normalise_events
from memory.scoring.priming import action_instances, odds_ratio, risk_lift
from memory.scoring.synthetic import NOISE_ACTION, PRIMING_ACTION, synthetic_workspace


def test_it_adds_half_to_each_cell_for_the_odds_ratio_and_its_interval():
    ratio, low, high = odds_ratio(10, 20, 5, 25)
    expected = 10.5 * 25.5 / (20.5 * 5.5)
    half_width = 1.959963984540054 * math.sqrt(1 / 10.5 + 1 / 20.5 + 1 / 5.5 + 1 / 25.5)
    assert ratio == pytest.approx(expected)
    assert low == pytest.approx(expected * math.exp(-half_width))
    assert high == pytest.approx(expected * math.exp(half_width))


def test_it_divides_the_goal_rate_after_actions_by_the_control_rate():
    assert risk_lift(10, 20, 5, 25) == pytest.approx((10.5 / 31) / (5.5 / 31))


def test_it_counts_a_chain_of_repeats_minutes_apart_once():
    events = normalise_events(
        pl.DataFrame(
            {
                "customer": [0, 0, 0, 0, 1],
                "name": ["Checkout"] * 5,
                "t": [0.0, 0.2, 0.5, 5.0, 0.1],
            }
        )
    )
    kept = action_instances(events, EngineConfig(priming_chain_gap_h=1.0))
    assert kept.sort("customer", "t")["t"].to_list() == [0.0, 5.0, 0.1]


def test_it_finds_the_planted_primer_and_not_the_noise():
    from memory.scoring import compute_memory

    workspace = synthetic_workspace(500, 40_000, seed=3)
    result = compute_memory(
        workspace.events, workspace.messages, workspace.message_labels, workspace.config
    )
    table = {row["event_name"]: row for row in result.priming.iter_rows(named=True)}
    assert table[PRIMING_ACTION]["odds_ratio_low"] > 1.3
    assert table[PRIMING_ACTION]["lift"] > table[NOISE_ACTION]["lift"] + 0.1
    assert table[PRIMING_ACTION]["median_lead_h"] < table[NOISE_ACTION]["median_lead_h"]
