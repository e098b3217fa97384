"""Pairing a customer's sends that reached the goal with those that did not (pure)."""

import polars as pl

from memory.scoring.preferences import PairRules, held_out, preference_pairs

DAY = 24.0


def sends(*rows) -> pl.DataFrame:
    """Rows of (customer_id, message_id, t, goal); goal None is unresolved."""
    return pl.DataFrame(
        [(c, m, t, g is not None, g) for c, m, t, g in rows],
        schema={
            "customer_id": pl.Int64,
            "message_id": pl.Int64,
            "t": pl.Float64,
            "resolved": pl.Boolean,
            "goal": pl.Int8,
        },
        orient="row",
    )


def pairs_of(frame, **rules) -> list[tuple]:
    found = preference_pairs(frame, PairRules(window_h=72.0, **rules))
    return list(
        found.select(
            "customer_id", "chosen_message_id", "rejected_message_id", "snapshot_t", "split"
        ).iter_rows()
    )


def test_it_pairs_reached_with_missed_sends_of_other_messages_nearest_first():
    frame = sends(
        (1, 10, 7 * DAY + 5, 1),  # reached
        (1, 11, 0.0, 0),  # missed, 7 days before
        (1, 12, 14 * DAY, 0),  # missed, 7 days minus 5 h after: nearer
        (1, 10, 21 * DAY, 0),  # missed, but the same message as the chosen one
        (1, 13, 28 * DAY, None),  # unresolved: never paired
        (2, 10, 0.0, 1),  # a customer with no missed send: no pair
    )
    assert pairs_of(frame, max_pairs=1) == [(1, 10, 12, 7 * DAY, "train")]
    assert sorted(pairs_of(frame)) == [(1, 10, 11, 0.0, "train"), (1, 10, 12, 7 * DAY, "train")]


def test_its_snapshot_is_the_start_of_the_earlier_sends_day():
    frame = sends((1, 10, 50.5, 1), (1, 11, 30.25, 0))
    assert pairs_of(frame) == [(1, 10, 11, 24.0, "train")]


def test_it_splits_at_the_cutoff_and_drops_pairs_straddling_it():
    frame = sends(
        (1, 10, 0.0, 1),
        (1, 11, 24.0, 0),  # both windows closed by 96 h + 72 h: train with cutoff 200
        (2, 10, 150.0, 1),
        (2, 11, 210.0, 0),  # straddles 200: neither
        (3, 10, 200.0, 1),
        (3, 11, 260.0, 0),  # from the cutoff on: eval
    )
    assert pairs_of(frame, cutoff_h=200.0) == [
        (1, 10, 11, 0.0, "train"),
        (3, 10, 11, 192.0, "eval"),
    ]


def test_it_requires_evidence_before_the_earlier_send():
    frame = sends(
        (1, 9, 0.0, 0), (1, 10, 24.0, 1), (1, 11, 48.0, 0), (2, 10, 0.0, 1), (2, 11, 1, 0)
    )
    assert [row[0] for row in pairs_of(frame, min_evidence=1)] == [1]


def test_it_holds_customers_out_whole_by_a_stable_hash():
    ids = pl.Series(range(1, 10_001))
    share = pl.select(held_out(pl.lit(ids), 10)).to_series().mean()
    assert 0.09 < share < 0.11
    frame = sends(
        *[(c, 10, 0.0, 1) for c in range(1, 200)], *[(c, 11, 1.0, 0) for c in range(1, 200)]
    )
    rows = pairs_of(frame, holdout_percent=10)
    held = {row[0] for row in rows if row[4] == "holdout"}
    assert held == {c for c in range(1, 200) if ((c * 2_654_435_761) % (1 << 32)) % 100 < 10}


def test_a_repeated_send_line_counts_once():
    frame = sends((1, 10, 0.0, 1), (1, 10, 0.0, 1), (1, 11, 24.0, 0))
    assert pairs_of(frame) == [(1, 10, 11, 0.0, "train")]
