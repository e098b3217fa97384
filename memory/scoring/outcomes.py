"""Turn sends into outcomes: did the goal follow within the attribution window."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from memory.scoring.frames import EngineConfig


def events_before(events: pl.DataFrame, as_of: float | None) -> tuple[pl.DataFrame, float]:
    """Return the events strictly before as_of and the horizon up to which outcomes are known.

    Without as_of every event is used and the horizon sits just past the last event, so a window
    ending exactly at the last event is still complete.
    """
    if as_of is not None:
        return events.filter(pl.col("t") < as_of), float(as_of)
    if events.height == 0:
        return events, 0.0
    return events, math.nextafter(float(events["t"].max()), math.inf)


def _group_codes(queries: pl.DataFrame, targets: pl.DataFrame, by: list[str]) -> tuple:
    """Return int64 codes of the ``by`` columns for queries and targets, equal iff keys are."""
    code = np.zeros(queries.height + targets.height, dtype=np.int64)
    for column in by:
        if queries[column].dtype.is_integer() and targets[column].dtype.is_integer():
            # Integers straight from numpy: no concatenated frame, no ranking.
            values = np.concatenate(
                [frame[column].fill_null(-1).to_numpy() for frame in (queries, targets)]
            ).astype(np.int64)
            values -= values.min() if values.size else 0
        else:
            both = pl.concat(
                [queries.select(column), targets.select(column)], how="vertical_relaxed"
            )
            values = both[column].rank("dense").fill_null(0).to_numpy().astype(np.int64)
        code = code * (int(values.max()) + 1 if values.size else 1) + values
    return code[: queries.height], code[queries.height :]


def _sorted_keys(
    queries: pl.DataFrame, targets: pl.DataFrame, by: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (query keys, query codes, sorted target keys, their codes, their times).

    A key is code * span + (t - t_min): one float per row that sorts by group, then time, so a
    single searchsorted answers "the next/last target of the same group". Rounding is monotone,
    so a key never orders two times the wrong way round, but it may merge close ones: callers
    settle equal keys on the times themselves (``_nearest``).
    """
    query_code, target_code = _group_codes(queries, targets, by)
    query_t = queries["t"].to_numpy().astype(np.float64)
    target_t = targets["t"].to_numpy().astype(np.float64)
    every_t = np.concatenate([query_t, target_t])
    origin = float(every_t.min())
    span = float(every_t.max()) - origin + 1.0
    query_key = query_code * span + (query_t - origin)
    target_key = target_code * span + (target_t - origin)
    order = np.argsort(target_key, kind="stable")
    # Within a run of equal keys, order by time too, so a run's ends are its extreme times.
    same = target_key[order][1:] == target_key[order][:-1]
    if same.any():
        runs = np.flatnonzero(np.r_[same, False] | np.r_[False, same])
        order[runs] = order[runs][np.lexsort((target_t[order[runs]], target_key[order[runs]]))]
    return query_key, query_code, target_key[order], target_code[order], target_t[order]


def _nearest(
    queries: pl.DataFrame, targets: pl.DataFrame, by: list[str], *, after: bool, inclusive: bool
) -> np.ndarray:
    """Return per query the nearest target time after (or before) it in the same group.

    Exact whatever the key's rounding: targets whose key equals the query's are compared on
    their times, so the answer depends only on the group's own times, not on which other groups
    (customers) share the frame.
    """
    result = np.full(queries.height, np.nan)
    if queries.height == 0 or targets.height == 0:
        return result
    query_key, query_code, target_key, target_code, target_t = _sorted_keys(queries, targets, by)
    query_t = queries["t"].to_numpy().astype(np.float64)
    lo = np.searchsorted(target_key, query_key, side="left")
    hi = lo.copy()
    # Only queries whose key some target shares need the end of that run: search those again.
    equal = np.flatnonzero(target_key[np.minimum(lo, target_key.size - 1)] == query_key)
    hi[equal] = np.searchsorted(target_key, query_key[equal], side="right")
    # Outside the run of equal keys the order is certain: beyond it, or just before it.
    index = hi if after else lo - 1
    safe = np.clip(index, 0, target_key.size - 1)
    found = (index >= 0) & (index < target_key.size) & (target_code[safe] == query_code)
    result[found] = target_t[safe[found]]
    tied = np.flatnonzero(hi > lo)
    if tied.size:
        lengths = hi[tied] - lo[tied]
        owner = np.repeat(np.arange(tied.size), lengths)
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        candidate = target_t[lo[tied][owner] + within]
        own_t = query_t[tied][owner]
        if after:
            fits = candidate >= own_t if inclusive else candidate > own_t
            best = np.full(tied.size, np.inf)
            np.minimum.at(best, owner[fits], candidate[fits])
            better = np.isfinite(best)
        else:
            fits = candidate <= own_t if inclusive else candidate < own_t
            best = np.full(tied.size, -np.inf)
            np.maximum.at(best, owner[fits], candidate[fits])
            better = np.isfinite(best)
        result[tied[better]] = best[better]
    return result


def next_time_after(
    queries: pl.DataFrame,
    targets: pl.DataFrame,
    *,
    by: list[str],
    inclusive: bool = False,
) -> np.ndarray:
    """Return, per query row (``by`` + ``t``), the first target ``t`` after it (NaN if none).

    ``inclusive`` also accepts a target at the very same time.
    """
    return _nearest(queries, targets, by, after=True, inclusive=inclusive)


def last_time_before(
    queries: pl.DataFrame, targets: pl.DataFrame, *, by: list[str], inclusive: bool = False
) -> np.ndarray:
    """Return, per query row, the last target ``t`` before it (NaN if none).

    ``inclusive`` also accepts a target at the very same time.
    """
    return _nearest(queries, targets, by, after=False, inclusive=inclusive)


def send_outcomes(events: pl.DataFrame, config: EngineConfig, horizon: float) -> pl.DataFrame:
    """Return one row per send with its outcome, open flag and whether it is resolved.

    Columns: ``send`` (row id), ``customer``, ``message``, ``t``, ``resolved`` (window closed
    before the horizon), ``goal`` and ``opened`` (Int8, null while unresolved). The goal counts in
    (t, t + window]; an open counts in [t, t + window] for the same message.
    """
    window = config.attribution_window_h
    sends = (
        events.filter(pl.col("name") == config.send_event)
        .select("customer", "message", "t")
        .sort("customer", "t", "message")
        .with_row_index("send")
        .with_columns(pl.col("send").cast(pl.Int64))
    )
    goals = events.filter(pl.col("name") == config.goal_event).select("customer", "t")
    if config.attribution == "all":
        next_goal = next_time_after(sends, goals, by=["customer"])
        hit = (next_goal - sends["t"].to_numpy()) <= window
    elif config.attribution == "last":
        hit = _credit_latest_send(sends, goals, window)
    else:
        raise ValueError(f"unknown attribution rule {config.attribution!r}")
    opens = events.filter(
        (pl.col("name") == config.open_event) & pl.col("message").is_not_null()
    ).select("customer", "message", "t")
    next_open = next_time_after(sends, opens, by=["customer", "message"], inclusive=True)
    opened = (next_open - sends["t"].to_numpy()) <= window
    resolved = (sends["t"].to_numpy() + window) < horizon
    return sends.with_columns(
        pl.Series("resolved", resolved),
        pl.when(pl.Series(resolved)).then(pl.Series(hit.astype(np.int8))).alias("goal"),
        pl.when(pl.Series(resolved)).then(pl.Series(opened.astype(np.int8))).alias("opened"),
    )


def _credit_latest_send(sends: pl.DataFrame, goals: pl.DataFrame, window: float) -> np.ndarray:
    """Mark sends that are the latest send (within the window) before some goal."""
    if goals.height == 0 or sends.height == 0:
        return np.zeros(sends.height, dtype=bool)
    left = goals.sort("t")
    right = sends.select("customer", "send", pl.col("t").alias("t_send")).sort("t_send")
    credited = left.join_asof(
        right,
        left_on="t",
        right_on="t_send",
        by="customer",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    ).filter((pl.col("t") - pl.col("t_send")) <= window)
    hit = np.zeros(sends.height, dtype=bool)
    hit[credited["send"].drop_nulls().to_numpy()] = True
    return hit
