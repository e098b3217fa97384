"""Reads of served decisions: a campaign's uplift per holdout arm, from stored counts.

The page and the API never read events: the periodic matching (memory.decision_matching)
stores each decision's send, goal and revenue, then counts each campaign's decisions by arm,
number of eligible messages, whether Primer's choice was served and whether resolved, and
stores the count with the per-customer sums; the uplift is computed from those few rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, Case, Count, F, FloatField, Q, Sum, Value, When
from django.db.models.functions import Coalesce

from campaigns.models import Campaign
from memory.models import Decision, UpliftClusters, UpliftCounts
from memory.scoring.offpolicy import Estimate
from memory.scoring.uplift import (
    ARM_ORDER,
    CUSTOMER_TOTALS,
    LEVEL,
    Clusters,
    Group,
    Uplift,
    uplift_of,
)


@dataclass(frozen=True)
class ArmFunnel:
    """How far one arm's decisions got: served, matched to a send, outcome known."""

    arm: str
    served: int
    matched: int
    resolved: int


@dataclass(frozen=True)
class CampaignUplift:
    campaign: Campaign
    shares: dict[str, float]  # arm -> its configured share of the audience
    funnel: list[ArmFunnel]
    uplift: Uplift
    counted_at: datetime | None  # when the matching counted the decisions (None: not yet)


# One stored row per (arm, eligible count, Primer's choice served, resolved): the key, then
# served, matched, goals, revenue, revenue squared and revenues reported (JSON in UpliftCounts).
CountRow = list


def campaign_decision_count_rows(*, campaign: Campaign) -> list[CountRow]:
    """Count the campaign's decisions per arm, number of eligible messages, whether Primer's
    choice was served and whether resolved: one pass over its decisions, a few rows out. The
    matching task stores them (UpliftCounts) for the page."""
    revenue = Coalesce(F("revenue"), Value(0.0), output_field=FloatField())
    rows = (
        Decision.objects.for_workspace(campaign.workspace)
        .filter(campaign=campaign)
        .annotate(
            primer_served=Case(
                When(message_id=F("primer_message_id"), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
            resolved=Case(
                When(resolved_at__isnull=False, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .order_by()
        .values_list("arm", "eligible_count", "primer_served", "resolved")
        .annotate(
            served=Count("id"),
            matched=Count("send_event_id"),
            goals=Count("id", filter=Q(goal=True)),
            revenue_total=Sum(revenue),
            revenue_squares=Sum(revenue * revenue),
            revenue_reported=Count("revenue"),
        )
    )
    # SQLite answers the booleans as 0/1 and an empty sum as NULL.
    return [
        [arm, eligible, bool(primer), bool(resolved), *counts, float(total or 0), float(sq or 0), n]
        for arm, eligible, primer, resolved, *counts, total, sq, n in rows
    ]


def decision_counts_fold(rows: list[CountRow]) -> tuple[list[ArmFunnel], list[Group]]:
    """Return the funnel per arm (served, matched, resolved) and the resolved decisions counted
    per uplift Group, from count rows."""
    totals: dict[str, list[int]] = {}
    groups = []
    for arm, eligible, primer, resolved, served, matched, goals, total, squares, reported in rows:
        arm_totals = totals.setdefault(arm, [0, 0, 0])
        arm_totals[0] += served
        arm_totals[1] += matched
        arm_totals[2] += served if resolved else 0
        if resolved:
            groups.append(
                Group(
                    arm=arm,
                    eligible=eligible,
                    primer_served=primer,
                    sends=served,
                    goals=goals,
                    revenue=total,
                    revenue_squares=squares,
                    revenue_reported=reported,
                )
            )
    funnel = [ArmFunnel(arm, *totals.get(arm, (0, 0, 0))) for arm in ARM_ORDER]
    return funnel, groups


# Each customer's totals per arm (CUSTOMER_TOTALS), then per arm the sums of their products:
# one pass over the campaign's resolved decisions (the campaign and arm index), no rows out.
_PRODUCTS = [
    (first, second) for i, first in enumerate(CUSTOMER_TOTALS) for second in CUSTOMER_TOTALS[i:]
]
_CLUSTERS_SQL = """
SELECT arm, COUNT(*), SUM(n), {products}
FROM (
    SELECT arm, customer_id,
        CAST(COUNT(*) AS DOUBLE PRECISION) AS n,
        CAST(SUM(CASE WHEN goal THEN 1 ELSE 0 END) AS DOUBLE PRECISION) AS y,
        CAST(SUM(COALESCE(revenue, 0)) AS DOUBLE PRECISION) AS v,
        CAST(SUM(CASE WHEN message_id = primer_message_id AND goal THEN eligible_count ELSE 0 END)
            AS DOUBLE PRECISION) AS a,
        CAST(SUM(CASE WHEN message_id = primer_message_id THEN eligible_count ELSE 0 END)
            AS DOUBLE PRECISION) AS w
    FROM {table}
    WHERE workspace_id = %s AND campaign_id = %s AND resolved_at IS NOT NULL
    GROUP BY arm, customer_id
) AS per_customer
GROUP BY arm
"""


@dataclass(frozen=True)
class ArmClusters:
    clusters: Clusters
    decisions: int  # the resolved decisions summed


def campaign_decision_clusters(*, campaign: Campaign) -> dict[str, ArmClusters]:
    """Return per arm its customers and the sums of products of their totals (uplift.Clusters),
    so that a customer decided for several times counts as one randomised unit. Groups every
    resolved decision by customer: the matching task stores it (UpliftClusters) for pages."""
    sql = _CLUSTERS_SQL.format(
        products=", ".join(f"SUM({a} * {b})" for a, b in _PRODUCTS),
        table=connection.ops.quote_name(Decision._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.workspace_id, campaign.pk])
        rows = cursor.fetchall()
    return {
        arm: ArmClusters(
            Clusters(
                int(customers),
                {a + b: float(total or 0.0) for (a, b), total in zip(_PRODUCTS, sums, strict=True)},
            ),
            int(decisions or 0),
        )
        for arm, customers, decisions, *sums in rows
    }


def campaign_uplift_clusters(*, campaign: Campaign, groups: list[Group]) -> dict[str, Clusters]:
    """Return per arm the stored customer sums when they cover exactly the resolved decisions
    the groups count; otherwise (not stored yet, or decisions erased since) sum them now."""
    sends: dict[str, int] = {}
    for group in groups:
        sends[group.arm] = sends.get(group.arm, 0) + group.sends
    stored = {
        row.arm: row
        for row in UpliftClusters.objects.for_workspace(campaign.workspace_id).filter(
            campaign=campaign
        )
    }
    if set(stored) == set(sends) and all(stored[a].decisions == n for a, n in sends.items()):
        return {arm: Clusters(row.customers, row.products) for arm, row in stored.items()}
    summed = campaign_decision_clusters(campaign=campaign)
    return {arm: found.clusters for arm, found in summed.items()}


def uplift_counted_at(*, campaign: Campaign) -> datetime | None:
    """Return when the matching last counted the campaign's decisions (None: never)."""
    stored = UpliftCounts.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)
    return stored.values_list("counted_at", flat=True).first()


def campaign_uplift(*, campaign: Campaign) -> CampaignUplift:
    """Return the campaign's funnel per arm and its uplift estimates from the counts and sums
    the matching stored (two indexed reads; the decisions are not read)."""
    stored = UpliftCounts.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)
    counts = stored.first()
    funnel, groups = decision_counts_fold(counts.rows if counts else [])
    holdouts = campaign.holdout_shares
    shares = {"primer": 1.0 - sum(holdouts.values()), **holdouts}
    return CampaignUplift(
        campaign,
        shares,
        funnel,
        uplift_of(groups, clusters=campaign_uplift_clusters(campaign=campaign, groups=groups)),
        counts.counted_at if counts else None,
    )


def _number(x: float | None) -> float | None:
    """Return x, or None where it is NaN or infinite (JSON has neither)."""
    return None if x is None or not math.isfinite(x) else x


def _estimate(estimate: Estimate | None) -> dict | None:
    if estimate is None:
        return None
    return {
        "value": _number(estimate.value),
        "low": _number(estimate.low),
        "high": _number(estimate.high),
    }


def uplift_summary(result: CampaignUplift) -> dict:
    """Return the uplift as JSON-safe data: the API's answer, the same numbers as the page."""
    campaign, uplift = result.campaign, result.uplift
    funnel = {row.arm: row for row in result.funnel}
    off = uplift.off_policy
    return {
        "campaign": campaign.slug,
        "counted_at": result.counted_at,
        "goal_event": campaign.effective_goal_event,
        "window_h": campaign.effective_attribution_window_h,
        "level": LEVEL,
        "arms": [
            {
                "arm": arm.arm,
                "share": result.shares.get(arm.arm, 0.0),
                "served": funnel[arm.arm].served,
                "matched": funnel[arm.arm].matched,
                "resolved": funnel[arm.arm].resolved,
                "sends": arm.sends,
                "goals": arm.goals,
                "goal_rate": _estimate(arm.rate),
                "revenue_per_send": _estimate(arm.revenue),
            }
            for arm in uplift.arms
        ],
        "comparisons": [
            {
                "primer_against": comparison.against,
                "difference": _estimate(comparison.difference),
                "revenue_difference": _estimate(comparison.revenue_difference),
                "can_tell": comparison.can_tell,
                "minimum_detectable_effect": _number(comparison.detectable),
            }
            for comparison in uplift.comparisons
        ],
        "off_policy": None
        if off is None
        else {
            "sends": off.sends,
            "matches": off.matches,
            "ips": _estimate(off.ips),
            "snips": _estimate(off.snips),
            "random": _estimate(off.random),
            "difference": _estimate(off.difference),
            "can_tell": off.can_tell,
            "minimum_detectable_effect": _number(off.detectable),
        },
    }
