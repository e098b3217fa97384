"""Decision policies' inputs: waves, segments, the randomisation check, revenue in a window."""

import numpy as np
import polars as pl
import pytest

from memory.scoring.decisions import (
    randomisation_check,
    send_waves,
    trait_segments,
    window_revenue,
)
from memory.scoring.rolling import nightly_cuts


def test_it_groups_sends_less_than_a_day_apart_into_one_wave():
    sends = pl.DataFrame(
        {"customer": [0, 1, 2, 3, 4], "message": [0] * 5, "t": [0.0, 5.0, 20.0, 168.0, 168.0]}
    )
    assert send_waves(sends)["wave"].to_list() == [0, 0, 0, 1, 1]


def test_it_bands_numeric_traits_and_keeps_unknown_apart():
    traits = pl.DataFrame(
        {
            "customer": [0, 1, 2, 3, 4, 5, 6],
            "gender": ["F", "M", None, "F", "M", "F", "O"],
            "income": [30.0, 40.0, 50.0, 60.0, 70.0, 80.0, None],
        }
    )
    segments = trait_segments(traits, ("gender", "income"))["segment"].to_list()
    assert segments[0] == "gender F x income band 1/3"
    assert segments[5] == "gender F x income band 3/3"
    assert segments[2] == "gender unknown x income band 2/3"
    assert segments[6] == "gender O x income unknown"
    # A trait the workspace lacks is skipped; none at all puts everyone in one segment.
    assert trait_segments(traits, ("plan",))["segment"].unique().to_list() == ["everyone"]


def random_sends(seed=0, skew=False):
    """Return 4,000 sends in one wave, two segments, four messages (skewed: by segment)."""
    rng = np.random.default_rng(seed)
    customer = np.arange(4000)
    segment = customer % 2
    message = rng.integers(0, 4, customer.size)
    if skew:  # segment 1 gets message 0 twice as often
        extra = (segment == 1) & (rng.random(customer.size) < 0.25)
        message = np.where(extra, 0, message)
    sends = pl.DataFrame({"customer": customer, "message": message, "t": np.zeros(customer.size)})
    segments = pl.DataFrame({"customer": customer, "segment": [f"s{s}" for s in segment]})
    return send_waves(sends), segments


def test_it_accepts_uniform_random_sends_and_catches_targeted_ones():
    fair = randomisation_check(*random_sends())
    assert fair.waves["messages"].to_list() == [4]
    assert fair.uniform_p > 0.01 and fair.independence_p > 0.01
    assert fair.independence_dof == 3  # (2 segments - 1) x (4 messages - 1)
    targeted = randomisation_check(*random_sends(skew=True))
    assert targeted.uniform_p < 0.001 and targeted.independence_p < 0.001


def test_it_sums_the_revenue_of_goals_inside_each_sends_window():
    sends = pl.DataFrame({"send": [0, 1, 2], "customer": [0, 0, 1], "t": [0.0, 100.0, 0.0]})
    revenue = pl.DataFrame(
        {"customer": [0, 0, 0, 1], "t": [0.0, 10.0, 72.0, 73.0], "revenue": [5.0, 2.0, 3.0, 9.0]}
    )
    # (0, 72]: 2 + 3, not the 5 at the send's own time; nothing after 100; 73 is past 72.
    assert window_revenue(sends, revenue, 72.0).tolist() == pytest.approx([5.0, 0.0, 0.0])


def test_it_cuts_nightly_from_the_cut_off_and_spreads_at_most_max_cuts():
    send_t = np.array([504.0, 510.0, 530.0, 580.0])
    assert nightly_cuts(send_t, 504.0).tolist() == [504.0, 528.0, 576.0]
    many = nightly_cuts(np.arange(0.0, 24.0 * 30, 12.0), 0.0, max_cuts=4)
    assert many.size == 4 and many[0] == 0.0 and many[-1] == 24.0 * 29
