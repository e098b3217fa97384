"""Sends become outcomes: the attribution window, censoring and overlapping sends."""

import polars as pl

from memory.scoring.frames import EngineConfig, normalise_events
from memory.scoring.outcomes import events_before, send_outcomes

SEND, GOAL, OPEN = "Message Sent", "Order Completed", "Message Opened"


def frame(rows: list[tuple[int, str, float, int | None]]) -> pl.DataFrame:
    return normalise_events(
        pl.DataFrame(rows, schema=["customer", "name", "t", "message"], orient="row")
    )


def outcomes(rows, as_of=None, **config):
    events, horizon = events_before(frame(rows), as_of)
    return send_outcomes(events, EngineConfig(**config), horizon).sort("customer", "t")


def test_it_counts_a_goal_inside_the_window_and_not_after_it():
    result = outcomes(
        [(0, SEND, 0.0, 0), (0, GOAL, 10.0, None), (0, SEND, 100.0, 0), (0, GOAL, 180.0, None)],
        as_of=400.0,
    )
    assert result["goal"].to_list() == [1, 0]


def test_it_includes_the_window_end_and_excludes_the_send_instant():
    result = outcomes(
        [(0, SEND, 0.0, 0), (0, GOAL, 0.0, None), (1, SEND, 0.0, 0), (1, GOAL, 72.0, None)],
        as_of=400.0,
    )
    assert result["goal"].to_list() == [0, 1]


def test_it_leaves_sends_whose_window_passes_as_of_unresolved():
    result = outcomes([(0, SEND, 100.0, 0), (0, SEND, 150.0, 0), (0, GOAL, 160.0, None)], 200.0)
    assert result["resolved"].to_list() == [True, False]
    assert result["goal"].to_list() == [1, None]


def test_it_censors_at_the_last_event_without_as_of():
    result = outcomes([(0, SEND, 0.0, 0), (0, SEND, 10.0, 0), (0, GOAL, 72.0, None)])
    assert result["resolved"].to_list() == [True, False]


def test_it_credits_every_overlapping_send_by_default():
    rows = [(0, SEND, 0.0, 0), (0, SEND, 24.0, 1), (0, GOAL, 30.0, None)]
    assert outcomes(rows, as_of=500.0)["goal"].to_list() == [1, 1]


def test_it_credits_only_the_latest_send_under_the_last_rule():
    rows = [(0, SEND, 0.0, 0), (0, SEND, 24.0, 1), (0, GOAL, 30.0, None)]
    assert outcomes(rows, as_of=500.0, attribution="last")["goal"].to_list() == [0, 1]


def test_it_marks_an_open_of_the_same_message_within_the_window():
    rows = [(0, SEND, 0.0, 0), (0, OPEN, 0.0, 0), (0, SEND, 10.0, 1), (0, OPEN, 20.0, 0)]
    assert outcomes(rows, as_of=500.0)["opened"].to_list() == [1, 0]


def test_it_tells_apart_times_closer_than_the_search_key_resolves():
    from memory.scoring.outcomes import last_time_before, next_time_after

    # A large customer code leaves the search key a resolution of ~1e-7 h; times 1e-9 h apart
    # must still be ordered by the times themselves.
    far = 40_000_000
    queries = pl.DataFrame({"customer": [far, 0], "t": [10.0, 0.0]})
    targets = pl.DataFrame(
        {"customer": [far, far, far, 0], "t": [10.000000001, 10.0, 9.999999999, 5.0]}
    )
    assert next_time_after(queries, targets, by=["customer"]).tolist() == [10.000000001, 5.0]
    assert next_time_after(queries, targets, by=["customer"], inclusive=True)[0] == 10.0
    assert last_time_before(queries, targets, by=["customer"])[0] == 9.999999999
    assert last_time_before(queries, targets, by=["customer"], inclusive=True)[0] == 10.0
