"""Match served decisions to the sends they led to and resolve their outcomes, set-based.

A few SQL statements per workspace, under an advisory lock: sends naming their decision, then
sends of the recommended message within the window, each send to one decision at most; then
the goal and its revenue once the window after the send has closed (docs/decisions/0601).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns.models import Campaign, Workspace
from memory.decision_selectors import campaign_decision_clusters, campaign_decision_count_rows
from memory.models import Decision, Event, UpliftClusters, UpliftCounts

# A send may reach Primer this long after its decision's window closed and still be matched.
LATE_SENDS = timedelta(days=7)
# A decision served just before a count but committed after it is counted by the next run.
COUNT_OVERLAP = timedelta(minutes=1)


def _decision_id_expression() -> str:
    if connection.vendor == "postgresql":
        return "e.properties ->> 'decision_id'"
    return "json_extract(e.properties, '$.decision_id')"


# A send naming its decision (properties.decision_id) of the same customer and message.
_MATCH_NAMED = """
WITH named AS (
    SELECT d.id AS decision_id, e.id AS event_id, e.occurred_at,
           ROW_NUMBER() OVER (PARTITION BY d.id ORDER BY e.occurred_at, e.id) AS nth
    FROM memory_decision d
    JOIN memory_event e
      ON e.customer_id = d.customer_id AND e.workspace_id = d.workspace_id
     AND e.message_id = d.message_id AND e.name = %(send)s
     AND e.occurred_at >= %(since)s
     AND {decision_id} = d.public_id
    WHERE d.workspace_id = %(workspace)s AND d.send_event_id IS NULL
      AND d.expires_at > %(since)s
      AND NOT EXISTS (
          SELECT 1 FROM memory_decision m
          WHERE m.workspace_id = %(workspace)s AND m.send_event_id = e.id)
)
UPDATE memory_decision
SET send_event_id = named.event_id, sent_at = named.occurred_at, matched_by = 'decision_id'
FROM named
WHERE memory_decision.id = named.decision_id AND named.nth = 1
"""

# Sends without a named decision: each send takes the latest decision for that customer and
# message whose window it falls in, then each decision keeps the earliest send that took it.
_MATCH_WINDOW = """
WITH pairs AS (
    SELECT e.id AS event_id, d.id AS decision_id, e.occurred_at,
           ROW_NUMBER() OVER (
               PARTITION BY e.id ORDER BY d.decided_at DESC, d.id DESC) AS by_send
    FROM memory_decision d
    JOIN memory_event e
      ON e.customer_id = d.customer_id AND e.workspace_id = d.workspace_id
     AND e.message_id = d.message_id AND e.name = %(send)s
     AND e.occurred_at >= d.decided_at AND e.occurred_at < d.expires_at
    WHERE d.workspace_id = %(workspace)s AND d.send_event_id IS NULL
      AND d.expires_at > %(since)s
      AND ({decision_id}) IS NULL
      AND NOT EXISTS (
          SELECT 1 FROM memory_decision m
          WHERE m.workspace_id = %(workspace)s AND m.send_event_id = e.id)
), taken AS (
    SELECT event_id, decision_id, occurred_at,
           ROW_NUMBER() OVER (PARTITION BY decision_id ORDER BY occurred_at, event_id) AS nth
    FROM pairs WHERE by_send = 1
)
UPDATE memory_decision
SET send_event_id = taken.event_id, sent_at = taken.occurred_at, matched_by = 'window'
FROM taken
WHERE memory_decision.id = taken.decision_id AND taken.nth = 1
"""

# Resolve matched decisions whose window after the send has closed: the goal and its revenue.
_RESOLVE_PG = """
UPDATE memory_decision d
SET goal = EXISTS (
        SELECT 1 FROM memory_event g
        WHERE g.customer_id = d.customer_id AND g.workspace_id = d.workspace_id
          AND g.name = %(goal)s AND g.occurred_at > d.sent_at
          AND g.occurred_at <= d.sent_at + d.window_h * interval '1 hour'),
    revenue = (
        SELECT SUM(CASE WHEN jsonb_typeof(g.properties -> 'revenue') = 'number'
                        THEN (g.properties ->> 'revenue')::float END)
        FROM memory_event g
        WHERE g.customer_id = d.customer_id AND g.workspace_id = d.workspace_id
          AND g.name = %(goal)s AND g.occurred_at > d.sent_at
          AND g.occurred_at <= d.sent_at + d.window_h * interval '1 hour'),
    resolved_at = %(now)s
WHERE d.workspace_id = %(workspace)s AND d.send_event_id IS NOT NULL
  AND d.resolved_at IS NULL AND d.sent_at + d.window_h * interval '1 hour' < %(now)s
"""


@dataclass(frozen=True)
class MatchSummary:
    named: int
    windowed: int
    resolved: int


def decisions_match(
    *, workspace: Workspace, now: datetime | None = None, count_every_campaign: bool = False
) -> MatchSummary:
    """Match the workspace's pending decisions to their sends, then resolve closed windows,
    then count the campaigns whose counts are out of date (or, asked for, every campaign).

    Idempotent; each send is matched to one decision at most (a unique index holds it too), and
    each decision to one send. Runs periodically on a worker (memory.decisions_match).
    """
    now = now or timezone.now()
    moment = connection.ops.adapt_datetimefield_value  # SQLite compares stored text
    params = {
        "workspace": workspace.pk,
        "send": workspace.send_event,
        "goal": workspace.goal_event,
        "since": moment(now - LATE_SENDS),
        "now": moment(now),
    }
    expression = _decision_id_expression()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One matcher per workspace at a time: two would race for the same sends.
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [1_600, workspace.pk])
        named_sql, window_sql = (
            sql.format(decision_id=expression) for sql in (_MATCH_NAMED, _MATCH_WINDOW)
        )
        named, matched_campaigns = _matched(cursor, named_sql, params)
        windowed = 0
        while True:  # a send left out by a competing one may still fit an earlier decision
            changed, campaigns = _matched(cursor, window_sql, params)
            if changed == 0:
                break
            windowed += changed
            matched_campaigns = _either(matched_campaigns, campaigns)
        if connection.vendor == "postgresql":
            cursor.execute(_RESOLVE_PG, params)
            resolved = max(cursor.rowcount, 0)
        else:
            resolved = _resolve_in_python(workspace=workspace, now=now)
        resolved_campaigns: set[int] = set()
        if resolved:
            resolved_campaigns = set(
                Decision.objects.for_workspace(workspace)
                .filter(resolved_at=now, campaign__isnull=False)
                .values_list("campaign_id", flat=True)
                .distinct()
            )
            uplift_clusters_store(workspace=workspace, campaign_ids=resolved_campaigns, now=now)
        changed_campaigns = _either(matched_campaigns, resolved_campaigns)
        if count_every_campaign:  # someone waits for a count newer than their request
            due = set(Campaign.objects.for_workspace(workspace).values_list("pk", flat=True))
        else:
            due = uplift_campaigns_due(workspace=workspace, changed=changed_campaigns)
        uplift_counts_store(workspace=workspace, campaign_ids=due, now=now)
    return MatchSummary(named, windowed, resolved)


def uplift_campaigns_due(*, workspace: Workspace, changed: set[int] | None) -> set[int]:
    """Return the campaigns whose stored counts are out of date: those whose decisions this
    run matched or resolved (`changed`; None when not known: every campaign with decisions),
    and those never counted or with a decision served since their count (found through the
    pending-decisions index)."""
    served = Decision.objects.for_workspace(workspace).filter(campaign=OuterRef("pk"))
    campaigns = Campaign.objects.for_workspace(workspace).filter(Exists(served))
    if changed is None:
        return set(campaigns.values_list("pk", flat=True))
    served_since = Decision.objects.for_workspace(workspace).filter(
        campaign=OuterRef("campaign_id"),
        send_event_id__isnull=True,
        decided_at__gt=OuterRef("counted_at") - COUNT_OVERLAP,
    )
    current = UpliftCounts.objects.for_workspace(workspace).filter(
        ~Exists(served_since), campaign=OuterRef("pk")
    )
    return changed | set(campaigns.filter(~Exists(current)).values_list("pk", flat=True))


def uplift_counts_store(
    *, workspace: Workspace, campaign_ids: set[int], now: datetime | None = None
) -> None:
    """Count each campaign's decisions per arm (decision_selectors.campaign_decision_count_rows)
    and store them (UpliftCounts): what the uplift page and API read."""
    now = now or timezone.now()
    for campaign in Campaign.objects.for_workspace(workspace).filter(pk__in=campaign_ids):
        UpliftCounts.objects.for_workspace(workspace).update_or_create(
            campaign=campaign,
            defaults={
                "workspace": workspace,
                "rows": campaign_decision_count_rows(campaign=campaign),
                "counted_at": now,
            },
        )


def uplift_store(*, workspace: Workspace, campaign_ids: set[int]) -> None:
    """Store the campaigns' counts and customer sums again (after their decisions changed other
    than by the matching: an erasure)."""
    now = timezone.now()
    uplift_clusters_store(workspace=workspace, campaign_ids=campaign_ids, now=now)
    uplift_counts_store(workspace=workspace, campaign_ids=campaign_ids, now=now)


def uplift_clusters_store(
    *, workspace: Workspace, campaign_ids: set[int], now: datetime | None = None
) -> None:
    """Store each campaign's per-arm customer sums (UpliftClusters) from its resolved decisions:
    what the uplift page's per-customer variances read instead of grouping them per request."""
    now = now or timezone.now()
    for campaign in Campaign.objects.for_workspace(workspace).filter(pk__in=campaign_ids):
        found = campaign_decision_clusters(campaign=campaign)
        stored = UpliftClusters.objects.for_workspace(workspace).filter(campaign=campaign)
        stored.exclude(arm__in=list(found)).delete()
        UpliftClusters.objects.bulk_create(
            [
                UpliftClusters(
                    workspace=workspace,
                    campaign=campaign,
                    arm=arm,
                    customers=arm_clusters.clusters.customers,
                    decisions=arm_clusters.decisions,
                    products=arm_clusters.clusters.products,
                    computed_at=now,
                )
                for arm, arm_clusters in found.items()
            ],
            update_conflicts=True,
            unique_fields=["campaign", "arm"],
            update_fields=["customers", "decisions", "products", "computed_at"],
        )


def _matched(cursor, update: str, params: dict) -> tuple[int, set[int] | None]:
    """Run a matching UPDATE; return how many decisions it matched and their campaigns (None
    when not known: SQLite's driver may predate RETURNING)."""
    if connection.vendor == "postgresql":
        cursor.execute(f"{update} RETURNING memory_decision.campaign_id", params)
        campaigns = [campaign for (campaign,) in cursor.fetchall()]
        return len(campaigns), {c for c in campaigns if c is not None}
    cursor.execute(update, params)
    cursor.execute("SELECT changes()")  # the driver says -1 after a WITH
    changed = int(cursor.fetchone()[0])
    return changed, (None if changed else set())


def _either(first: set[int] | None, second: set[int] | None) -> set[int] | None:
    """Return the campaigns in either set; None (not known) if either is not known."""
    return None if first is None or second is None else first | second


def _resolve_in_python(*, workspace: Workspace, now: datetime) -> int:
    """Resolve closed windows on SQLite (the demo's scale), one decision at a time."""
    pending = Decision.objects.for_workspace(workspace).filter(
        send_event_id__isnull=False, resolved_at__isnull=True
    )
    resolved = 0
    for decision in pending.only("customer_id", "sent_at", "window_h"):
        until = decision.sent_at + timedelta(hours=decision.window_h)
        if until >= now:
            continue
        goals = Event.objects.for_workspace(workspace).filter(
            customer_id=decision.customer_id,
            name=workspace.goal_event,
            occurred_at__gt=decision.sent_at,
            occurred_at__lte=until,
        )
        revenues = [
            value
            for value in goals.values_list("properties__revenue", flat=True)
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        decision.goal = goals.exists()
        decision.revenue = float(sum(revenues)) if revenues else None
        decision.resolved_at = now
        decision.save(update_fields=["goal", "revenue", "resolved_at"])
        resolved += 1
    return resolved


def workspaces_with_pending_decisions(*, now: datetime | None = None) -> list[int]:
    """Return the ids of workspaces with decisions still to match or resolve."""
    since = (now or timezone.now()) - LATE_SENDS
    pending = Decision.objects.all_workspaces().filter(
        send_event_id__isnull=True, expires_at__gt=since
    )
    unresolved = Decision.objects.all_workspaces().filter(
        send_event_id__isnull=False, resolved_at__isnull=True
    )
    ids = set(pending.values_list("workspace_id", flat=True).distinct())
    ids |= set(unresolved.values_list("workspace_id", flat=True).distinct())
    return sorted(ids)
