"""Habituation loads from decayed, similarity-weighted past sends, and the population curve."""

import math

import numpy as np
import polars as pl
import pytest
from scipy import sparse

from memory.scoring.habituation import (
    exposure_matrix,
    load_matrix,
    nearest_similarity,
    send_loads,
    tfidf_similarity,
)

HALF_LIFE = 168.0
TAU = HALF_LIFE / math.log(2.0)
SIMILARITY = sparse.csr_matrix(np.array([[1.0, 0.5], [0.5, 1.0]]))
SENDS = pl.DataFrame({"send": [0, 1], "customer": [0, 0], "message": [0, 1], "t": [0.0, HALF_LIFE]})


def test_it_sums_similar_sends_decayed_by_age():
    exposure = exposure_matrix(SENDS, 1, 2, TAU, 2 * HALF_LIFE)
    loads = load_matrix(exposure, SIMILARITY).toarray()[0]
    # Message 0: 1 * 1/4 + 0.5 * 1/2; message 1: 0.5 * 1/4 + 1 * 1/2.
    assert loads == pytest.approx([0.5, 0.625])


def test_it_loads_each_send_with_only_the_earlier_sends():
    assert send_loads(SENDS, SIMILARITY, TAU) == pytest.approx([0.0, 0.25])


def test_it_finds_near_identical_texts_similar_and_different_texts_not():
    similarity = tfidf_similarity(
        ["Save 10% on your next order", "Save 15% on your next order", "Free coffee tomorrow"]
    ).toarray()
    assert similarity[0, 1] > 0.6
    assert similarity[0, 2] < 0.2
    assert similarity[0, 0] == pytest.approx(1.0)


def test_it_keeps_only_the_nearest_neighbours_symmetrically():
    dense = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    kept = nearest_similarity(sparse.csr_matrix(dense), 1).toarray()
    assert kept[0, 1] == 0.9 and kept[1, 0] == 0.9
    assert kept[0, 2] == 0.0
    assert kept[2, 1] == 0.2 and kept[1, 2] == 0.2  # 2's nearest is 1, kept both ways
