"""Deterministic group sums: polars' parallel float sums may differ in the last bit run to run."""

from __future__ import annotations

import numpy as np
import polars as pl


def group_sums(frame: pl.DataFrame, keys: list[str], values: list[str]) -> pl.DataFrame:
    """Return one row per key with each value column summed in a content-defined order.

    Rows are sorted by the keys and then the values themselves, so the summation order (and hence
    every bit of the result) does not depend on the order the rows arrived in.
    """
    if frame.height == 0:
        return frame.select(*keys, *[pl.col(v).cast(pl.Float64) for v in values]).clear()
    ordered = frame.select(*keys, *values).sort([*keys, *values])
    group = ordered.select(pl.struct(keys).rle_id().alias("g"))["g"].to_numpy()
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sums = {
        value: np.add.reduceat(ordered[value].cast(pl.Float64).to_numpy(), starts)
        for value in values
    }
    return ordered.select(keys)[starts].with_columns(
        [pl.Series(value, column) for value, column in sums.items()]
    )
