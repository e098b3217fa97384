"""Reads for the insight pages: rollups, a run's stored aggregates, and bounded reads only.

Nothing here reads the events table but ``customer_timeline``, which reads one customer's
latest events through the (customer, occurred_at) index. Per-day figures come from the tallies
the ingest path keeps (memory/ingest/rollups.py); the rest from what a recompute stored
(memory/recompute/insights.py, the population summary, the priming indicators).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.utils import timezone

from campaigns.models import Label, Message, Workspace
from memory.models import (
    Customer,
    Event,
    EventDayCount,
    IngestIssueCount,
    PrimingIndicator,
    RecomputeRun,
)
from memory.scoring.priming import LEAD_BINS
from memory.scoring.similarity_map import similarity_map

OVERVIEW_DAYS = 30
HEALTH_DAYS = 7
KINDS = ("sends", "opens", "goals", "other")
# The customer page's timeline: their latest events, at most this many and this old.
TIMELINE_DAYS = 90
TIMELINE_LIMIT = 500
# The similarity map draws the newest active messages up to this many; from this similarity up
# two texts are near-duplicates (campaigns' NEAR_DUPLICATE_SIMILARITY, decision 0201).
MAP_MAX_MESSAGES = 2000
NEAR_DUPLICATE = 0.6
MAP_CACHE_SECONDS = 7 * 24 * 3600
NO_CHANNEL = "(no channel)"


def latest_run(*, workspace: Workspace) -> RecomputeRun | None:
    """Return the workspace's last successful recompute (its stats, not its population)."""
    return (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status=RecomputeRun.Status.SUCCEEDED)
        .defer("population")
        .order_by("-created_at")
        .first()
    )


def active_run(*, workspace: Workspace) -> RecomputeRun | None:
    """Return the recompute queued or running now, if any."""
    return (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status__in=[RecomputeRun.Status.QUEUED, RecomputeRun.Status.RUNNING])
        .defer("population", "stats")
        .order_by("-created_at")
        .first()
    )


def kind_of(workspace: Workspace, name: str) -> str:
    """Return which of KINDS an event name is, by the workspace's event names."""
    if name == workspace.send_event:
        return "sends"
    if name == workspace.open_event:
        return "opens"
    if name == workspace.goal_event:
        return "goals"
    return "other"


@dataclass(frozen=True)
class DayRow:
    day: object
    sends: int
    opens: int
    goals: int
    other: int


def events_per_day(*, workspace: Workspace, days: int = OVERVIEW_DAYS) -> list[DayRow]:
    """Return events per day by kind over the `days` days up to the newest day with events
    (today at the latest), oldest first; days without events are left out.

    From the tallies the ingest path keeps: a few rows per day, never the events. The window
    ends at the newest events rather than today, so an imported history shows too.
    """
    tallies = EventDayCount.objects.filter(workspace=workspace)
    today = timezone.now().date()
    newest = tallies.filter(day__lte=today).order_by("-day").values_list("day", flat=True).first()
    if newest is None:
        return []
    rows = (
        tallies.filter(day__gte=newest - timedelta(days=days - 1), day__lte=newest)
        .values("day", "name")
        .annotate(events=Sum("events"))
        .order_by()
    )
    by_day: dict = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    for row in rows:
        by_day[row["day"]][kind_of(workspace, row["name"])] += row["events"]
    return [DayRow(day, **by_day[day]) for day in sorted(by_day)]


def events_tallied(*, workspace: Workspace) -> bool:
    """Tell whether the workspace has ever stored an event (by its tallies)."""
    return EventDayCount.objects.filter(workspace=workspace).exists()


@dataclass(frozen=True)
class IssueRow:
    kind: str
    label: str
    reason: str
    count: int


def ingest_issues(*, workspace: Workspace, days: int = HEALTH_DAYS) -> list[IssueRow]:
    """Return rejected, late, future-dated and unknown-message items of the last `days` days,
    by kind and reason, most first."""
    since = timezone.now().date() - timedelta(days=days - 1)
    labels = dict(IngestIssueCount.Kind.choices)
    rows = (
        IngestIssueCount.objects.filter(workspace=workspace, day__gte=since)
        .values("kind", "reason")
        .annotate(count=Sum("count"))
        .order_by("-count", "kind", "reason")
    )
    return [
        IssueRow(r["kind"], labels.get(r["kind"], r["kind"]), r["reason"], r["count"]) for r in rows
    ]


def rejections_per_day(*, workspace: Workspace, days: int = HEALTH_DAYS) -> list[dict]:
    """Return {day, kind, count} per receipt day over the last `days` days, oldest first."""
    since = timezone.now().date() - timedelta(days=days - 1)
    return list(
        IngestIssueCount.objects.filter(workspace=workspace, day__gte=since)
        .values("day", "kind")
        .annotate(count=Sum("count"))
        .order_by("day", "kind")
    )


def overview(*, workspace: Workspace) -> dict:
    """Return what the Overview page shows: per-day events, runs, data health, first steps."""
    run = latest_run(workspace=workspace)
    insights = (run.stats.get("insights") or {}) if run else {}
    issues = ingest_issues(workspace=workspace)
    totals = defaultdict(int)
    for row in issues:
        totals[row.kind] += row.count
    return {
        "days": events_per_day(workspace=workspace),
        "empty": not events_tallied(workspace=workspace),
        "run": run,
        "active": active_run(workspace=workspace),
        "issues": issues,
        "issue_days": rejections_per_day(workspace=workspace),
        "health": {
            "unknown_message": totals[IngestIssueCount.Kind.UNKNOWN_MESSAGE],
            "late": totals[IngestIssueCount.Kind.LATE],
            "future": totals[IngestIssueCount.Kind.FUTURE],
            "rejected": totals[IngestIssueCount.Kind.REJECTED],
            "customers_without_traits": insights.get("customers_without_traits"),
        },
    }


def _label_names(workspace: Workspace, label_ids) -> dict[int, str]:
    labels = Label.objects.for_workspace(workspace).filter(pk__in=list(label_ids))
    return {
        pk: f"{set_slug}: {slug}"
        for pk, set_slug, slug in labels.values_list("pk", "label_set__slug", "slug")
    }


def content_gaps(*, workspace: Workspace) -> dict:
    """Return {labels, channels, counts}: active messages per (label, channel label).

    Rows are the labels of every set but `channel`; columns the `channel` set's labels (a
    message's channel is its labels in that set, decision 0200), and NO_CHANNEL for messages
    without one.
    """
    through = Message.labels.through
    pairs = through.objects.filter(message__workspace=workspace, message__active=True).values_list(
        "message_id", "label_id", "label__label_set__slug", "label__slug"
    )
    channels_of: dict[int, set[str]] = defaultdict(set)
    others_of: dict[int, set[str]] = defaultdict(set)
    for message_id, _, set_slug, slug in pairs:
        if set_slug == "channel":
            channels_of[message_id].add(slug)
        else:
            others_of[message_id].add(f"{set_slug}: {slug}")
    labels = Label.objects.for_workspace(workspace).exclude(label_set__slug="channel")
    names = sorted(f"{s}: {slug}" for s, slug in labels.values_list("label_set__slug", "slug"))
    channels = sorted(
        Label.objects.for_workspace(workspace)
        .filter(label_set__slug="channel")
        .values_list("slug", flat=True)
    )
    # Messages with no channel label yet get a column of their own, so they show as a gap too.
    if any(message_id not in channels_of for message_id in others_of):
        channels.append(NO_CHANNEL)
    counts = {(label, channel): 0 for label in names for channel in channels}
    for message_id, labels_of_message in others_of.items():
        for label in labels_of_message:
            for channel in channels_of.get(message_id) or [NO_CHANNEL]:
                if (label, channel) in counts:
                    counts[(label, channel)] += 1
    return {
        "labels": names,
        "channels": channels,
        "counts": [[counts[(label, channel)] for channel in channels] for label in names],
    }


def associations(*, workspace: Workspace, trait: str = "") -> dict:
    """Return the Associations page: segment lift by a trait, weight histograms, content gaps."""
    run = latest_run(workspace=workspace)
    insights = (run.stats.get("insights") or {}) if run else {}
    segments = insights.get("segment_lift") or {}
    traits = list(segments)
    chosen = trait if trait in segments else (traits[0] if traits else "")
    histograms = insights.get("weight_histograms") or {}
    label_ids = set(histograms.get("label_ids") or [])
    if chosen:
        label_ids |= set(segments[chosen]["label_ids"])
    names = _label_names(workspace, label_ids)
    heatmap = None
    if chosen:
        segment = segments[chosen]
        keep = [i for i, pk in enumerate(segment["label_ids"]) if pk in names]
        heatmap = {
            "trait": chosen,
            "values": segment["values"],
            "customers": segment["customers"],
            "labels": [names[segment["label_ids"][i]] for i in keep],
            "lift": [[row[i] for i in keep] for row in segment["lift"]],
        }
    pairs = zip(histograms.get("label_ids") or [], histograms.get("counts") or [], strict=True)
    weights = [{"label": names[pk], "counts": counts} for pk, counts in pairs if pk in names]
    return {
        "run": run,
        "traits": traits,
        "trait": chosen,
        "heatmap": heatmap,
        "weights": sorted(weights, key=lambda row: row["label"]),
        "weight_range": (histograms.get("low") or 0.0, histograms.get("high") or 0.0),
        "gaps": content_gaps(workspace=workspace),
    }


def message_map(*, workspace: Workspace) -> list[dict]:
    """Return the active messages' 2-D similarity map: key, subject, x, y, cluster, near-dupes.

    Computed once per state of the catalogue (its active messages' ids and versions) and
    cached, so a page asks the database only for that fingerprint.
    """
    messages = Message.objects.for_workspace(workspace).filter(active=True)
    state = messages.aggregate(n=Count("pk"), last=Max("updated_at"), top=Max("pk"))
    if not state["n"]:
        return []
    fingerprint = hashlib.sha1(
        f"{state['n']}:{state['last']}:{state['top']}".encode(), usedforsecurity=False
    ).hexdigest()
    key = f"primer:message-map:{workspace.pk}:{fingerprint}"

    def compute() -> list[dict]:
        rows = list(
            messages.order_by("-updated_at", "-pk").values("key", "subject", "body")[
                :MAP_MAX_MESSAGES
            ]
        )
        texts = [f"{row['subject']}\n{row['body']}".strip() for row in rows]
        xy, cluster = similarity_map(texts, NEAR_DUPLICATE)
        sizes = defaultdict(int)
        for c in cluster:
            sizes[int(c)] += 1
        return [
            {
                "key": row["key"],
                "subject": row["subject"] or row["body"][:60],
                "x": round(float(xy[i, 0]), 4),
                "y": round(float(xy[i, 1]), 4),
                "cluster": int(cluster[i]),
                "near_duplicates": sizes[int(cluster[i])] - 1,
            }
            for i, row in enumerate(rows)
        ]

    return cache.get_or_set(key, compute, MAP_CACHE_SECONDS)


def habituation(*, workspace: Workspace) -> dict:
    """Return the Habituation page: the run's response curve and the message similarity map."""
    run = latest_run(workspace=workspace)
    return {
        "run": run,
        "curve": (run.stats.get("habituation_curve") or []) if run else [],
        "lambdas": (run.stats.get("habituation") or {}) if run else {},
        "map": message_map(workspace=workspace),
    }


def priming(*, workspace: Workspace) -> dict:
    """Return the Priming page: each action's lift with its interval, and its lead times."""
    run = latest_run(workspace=workspace)
    stats = run.stats if run else {}
    horizon = stats.get("priming_horizon_h")
    histograms = {
        row["event_name"]: row.get("lead_histogram")
        for row in stats.get("priming") or []
        if row.get("lead_histogram")
    }
    indicators = list(
        PrimingIndicator.objects.for_workspace(workspace)
        .order_by("-lift")
        .values(
            "event_name",
            "lift",
            "odds_ratio",
            "odds_ratio_low",
            "odds_ratio_high",
            "support",
            "median_lead_h",
        )
    )
    edges = [horizon * i / LEAD_BINS for i in range(LEAD_BINS + 1)] if horizon else []
    return {
        "run": run,
        "indicators": indicators,
        "lead_edges": edges,
        "leads": [
            {"event_name": row["event_name"], "counts": histograms[row["event_name"]]}
            for row in indicators
            if row["event_name"] in histograms and edges
        ],
    }


def customer_timeline(
    *,
    workspace: Workspace,
    external_id: str,
    days: int = TIMELINE_DAYS,
    limit: int = TIMELINE_LIMIT,
) -> list[dict]:
    """Return one customer's latest events (at most `limit`, none more than `days` before their
    newest), oldest first, each with its kind: sends, opens, goals, priming (an action that
    primes) or other.

    One bounded read through the (customer, occurred_at) index.
    """
    customer = Customer.objects.for_workspace(workspace).filter(external_id=external_id).first()
    if customer is None:
        return []
    # Ninety days back from their newest event, not from today: an imported history still shows.
    since = (customer.last_seen_at or timezone.now()) - timedelta(days=days)
    rows = list(
        Event.objects.for_workspace(workspace)
        .filter(customer=customer, occurred_at__gte=since)
        .order_by("-occurred_at")
        .values("name", "occurred_at", "message_key")[:limit]
    )
    priming_names = set(
        PrimingIndicator.objects.for_workspace(workspace)
        .filter(odds_ratio_low__gt=1.0)
        .values_list("event_name", flat=True)
    )
    timeline = []
    for row in reversed(rows):
        kind = kind_of(workspace, row["name"])
        if kind == "other" and row["name"] in priming_names:
            kind = "priming"
        timeline.append({**row, "kind": kind})
    return timeline
