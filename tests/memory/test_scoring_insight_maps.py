"""The pure pieces behind the insight pages: lead-time histograms and the message map."""

import numpy as np
import polars as pl

from memory.scoring.priming import LEAD_BINS, lead_histograms
from memory.scoring.similarity_map import similarity_map


def test_lead_times_fall_in_equal_bins_of_the_horizon():
    instances = pl.DataFrame(
        {
            "name": ["view", "view", "view", "cart", "cart"],
            "lead": [0.5, 1.5, np.nan, 23.9, 12.0],
        }
    )

    hist = lead_histograms(instances, horizon_h=24.0)  # bins of 2 h

    assert hist["view"] == [2] + [0] * (LEAD_BINS - 1)  # no goal: not counted
    assert hist["cart"][-1] == 1 and hist["cart"][6] == 1 and sum(hist["cart"]) == 2


def test_near_duplicates_share_a_cluster_and_land_close():
    texts = [
        "Spring sale: 20% off all drinks today",
        "Spring sale: 20% off all drinks this week",
        "Your loyalty points are about to expire",
        "Meet our new barista-made cold brew",
    ]

    xy, cluster = similarity_map(texts, threshold=0.6)

    assert xy.shape == (4, 2)
    assert cluster.tolist() == [0, 0, 1, 2]
    near = np.linalg.norm(xy[0] - xy[1])
    assert near < np.linalg.norm(xy[0] - xy[2]) and near < np.linalg.norm(xy[0] - xy[3])


def test_a_tiny_or_empty_catalogue_still_maps():
    assert similarity_map([], 0.6)[0].shape == (0, 2)
    xy, cluster = similarity_map(["One", "Two"], 0.6)
    assert xy.shape == (2, 2) and cluster.tolist() == [0, 1]
