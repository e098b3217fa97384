"""What a change would do to customers' next best messages, before it is made.

Computed from the stored next best lists of a stated random sample of customers, without a
recompute (docs/decisions/0107-effect-preview.md). Each kind of change (a label boost now;
overrides and guardrails later) re-ranks every sampled list its own way; the tally is shared.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from campaigns.models import Label, Message, Workspace
from memory.models import CustomerNextBest, CustomerState
from memory.recompute.plan import engine_config

DEFAULT_SAMPLE = 2_000
WILSON_Z = 1.959964  # 95%


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial share."""
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    centre = share + z * z / (2 * trials)
    margin = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return max(0.0, (centre - margin) / scale), min(1.0, (centre + margin) / scale)


@dataclass(frozen=True)
class EffectPreview:
    """How many sampled customers' top next best message would change, and how."""

    kind: str
    change: dict  # what was proposed, as given
    customers: int  # with stored lists in the workspace
    sample: int  # of them, drawn at random (seeded)
    seed: int
    changed: int  # sampled customers whose top message changes
    share: float
    interval: tuple[float, float]  # Wilson 95% interval on the share
    label_shifts: dict[str, list[dict]]  # per label set: label, share of tops before, after
    example: dict | None  # one changed customer's top messages before and after
    note: str
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def _sample_lists(*, workspace: Workspace, sample: int, seed: int) -> tuple[int, pl.DataFrame]:
    """Return how many customers have memory and the stored lists of a random sample of them."""
    ids = np.fromiter(
        CustomerState.objects.for_workspace(workspace).values_list("customer_id", flat=True),
        dtype=np.int64,
    )
    chosen = np.random.default_rng(seed).choice(ids, size=min(sample, ids.size), replace=False)
    rows = list(
        CustomerNextBest.objects.for_workspace(workspace)
        .filter(customer_id__in=chosen.tolist(), message__active=True)
        .values_list("customer_id", "customer__external_id", "message_id", "score", "boost")
    )
    lists = pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.Int64,
            "customer": pl.Utf8,
            "message_id": pl.Int64,
            "score": pl.Float64,
            "boost": pl.Float64,
        },
        orient="row",
    )
    return int(ids.size), lists


def _message_labels(workspace: Workspace) -> pl.DataFrame:
    """Return message_id, label_id, label_set, label, share (1 / the message's labels)."""
    links = pl.DataFrame(
        list(
            Message.labels.through.objects.filter(message__workspace=workspace).values_list(
                "message_id", "label_id", "label__label_set__slug", "label__slug"
            )
        ),
        schema={
            "message_id": pl.Int64,
            "label_id": pl.Int64,
            "label_set": pl.Utf8,
            "label": pl.Utf8,
        },
        orient="row",
    )
    return links.with_columns((1.0 / pl.len().over("message_id")).alias("share"))


def _label_boosts(workspace: Workspace) -> dict[int, float]:
    """Return each label's boost as ranking counts it (an archived label's counts 0)."""
    return {
        pk: (boost if active else 0.0)
        for pk, boost, active in Label.objects.for_workspace(workspace).values_list(
            "pk", "boost", "active"
        )
    }


def _mean_boosts(links: pl.DataFrame, boosts: dict[int, float]) -> pl.DataFrame:
    """Return message_id, boost: the mean boost of the message's labels."""
    return (
        links.with_columns(
            pl.col("label_id").replace_strict(boosts, default=0.0, return_dtype=pl.Float64)
            * pl.col("share")
        )
        .group_by("message_id")
        .agg(pl.col("label_id").sum().alias("new_boost"))
    )


def _tops(lists: pl.DataFrame, column: str) -> pl.DataFrame:
    """Return each customer's best message by `column` (ties to the lower message id)."""
    return (
        lists.sort(["customer_id", column, "message_id"], descending=[False, True, False])
        .group_by("customer_id", maintain_order=True)
        .first()
        .select("customer_id", "customer", pl.col("message_id").alias(f"top_{column}"))
    )


def _preview(
    *,
    workspace: Workspace,
    kind: str,
    change: dict,
    rescore: Callable[[pl.DataFrame], pl.DataFrame],
    sample: int,
    seed: int,
    note: str,
) -> EffectPreview:
    """Sample stored lists, re-rank them with `rescore` (adds `before` and `after` scores), and
    tally the customers whose top message changes."""
    started = time.perf_counter()
    customers, lists = _sample_lists(workspace=workspace, sample=sample, seed=seed)
    links = _message_labels(workspace)
    scored = rescore(lists)
    tops = _tops(scored, "before").join(_tops(scored, "after").drop("customer"), on="customer_id")
    moved = tops.filter(pl.col("top_before") != pl.col("top_after"))
    drawn = tops.height
    keys = dict(
        Message.objects.for_workspace(workspace).values_list("pk", "key")
    )  # a workspace's messages: a few thousand at most
    shifts: dict[str, list[dict]] = {}
    for when in ("before", "after"):
        counted = (
            tops.join(links, left_on=f"top_{when}", right_on="message_id")
            .group_by("label_set", "label")
            .agg((pl.len() / max(drawn, 1)).alias(when))
        )
        for row in counted.iter_rows(named=True):
            labels = shifts.setdefault(row["label_set"], [])
            found = next((item for item in labels if item["label"] == row["label"]), None)
            if found is None:
                found = {"label": row["label"], "before": 0.0, "after": 0.0}
                labels.append(found)
            found[when] = row[when]
    for labels in shifts.values():
        for item in labels:
            item["shift"] = item["after"] - item["before"]
        labels.sort(key=lambda item: (-abs(item["shift"]), item["label"]))
    example = None
    if moved.height:
        first = moved.sort("customer").row(0, named=True)
        theirs = scored.filter(pl.col("customer_id") == first["customer_id"])
        example = {
            "customer": first["customer"],
            **{
                when: [
                    {"message": keys.get(m), "score": s}
                    for m, s in theirs.sort([when, "message_id"], descending=[True, False])
                    .head(5)
                    .select("message_id", when)
                    .iter_rows()
                ]
                for when in ("before", "after")
            },
        }
    return EffectPreview(
        kind=kind,
        change=change,
        customers=customers,
        sample=drawn,
        seed=seed,
        changed=moved.height,
        share=moved.height / drawn if drawn else 0.0,
        interval=wilson_interval(moved.height, drawn),
        label_shifts=shifts,
        example=example,
        note=note,
        seconds=time.perf_counter() - started,
    )


def boost_preview(
    *, workspace: Workspace, label: Label, boost: float, sample: int = DEFAULT_SAMPLE, seed: int = 0
) -> EffectPreview:
    """Return what setting `label`'s boost to `boost` would do to sampled customers' tops.

    Each stored score is re-based on today's boosts (score - ln(boost odds) x the stored boost
    + ln(boost odds) x the mean boost now), then again with the proposed one.
    """
    odds = math.log(engine_config(workspace).boost_odds)
    links = _message_labels(workspace)
    now = _label_boosts(workspace)
    proposed = now | {label.pk: float(boost) if label.active else 0.0}

    def rescore(lists: pl.DataFrame) -> pl.DataFrame:
        before = _mean_boosts(links, now).rename({"new_boost": "boost_before"})
        after = _mean_boosts(links, proposed).rename({"new_boost": "boost_after"})
        base = pl.col("score") - odds * pl.col("boost")
        return (
            lists.join(before, on="message_id", how="left")
            .join(after, on="message_id", how="left")
            .with_columns(
                (base + odds * pl.col("boost_before").fill_null(0.0)).alias("before"),
                (base + odds * pl.col("boost_after").fill_null(0.0)).alias("after"),
            )
        )

    note = (
        f"On {sample:,} customers drawn at random (seed {seed}) among those with memory, from "
        "each one's stored next best messages: a message outside their stored list is not "
        "re-ranked."
    )
    if not label.active:
        note += " The label is archived: its boost counts for nothing until it is restored."
    return _preview(
        workspace=workspace,
        kind="boost",
        change={"label": label.pk, "boost": float(boost)},
        rescore=rescore,
        sample=sample,
        seed=seed,
        note=note,
    )
