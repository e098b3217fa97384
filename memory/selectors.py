"""Reads of what Primer learned, shaped for the pages and the API."""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
from django.db.models import Exists, F, FloatField, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from campaigns.models import Workspace
from campaigns.tenancy.audit_selectors import AuditRow, audit_between
from memory.cache_fallback import cache_get_or_set
from memory.db.reads import HOUR_S
from memory.ingest.suppression import id_digest
from memory.models import (
    Customer,
    CustomerLabelWeight,
    CustomerMessageHabituation,
    CustomerState,
    Event,
    PrimingIndicator,
    RecomputeRun,
    SuppressedCustomer,
)
from memory.scoring.habituation import WORN_OUT_MIN_LOAD
from memory.scoring.model import FEATURE_MEANINGS
from memory.scoring.priming import PRIMED_MIN_SCORE


def events_of_workspace(*, workspace: Workspace, customer: str | None = None) -> QuerySet[Event]:
    """Return the workspace's events, newest stored first, optionally one customer's."""
    events = (
        Event.objects.for_workspace(workspace).select_related("customer", "message").order_by("-id")
    )
    if customer is not None:
        events = events.filter(customer__external_id=customer)
    return events


def customer_memory_summary(
    *, workspace: Workspace, external_id: str, habituation_limit: int = 10
) -> dict:
    """Return one customer's memory: weights by label set, worn messages, primed state."""
    customer = Customer.objects.for_workspace(workspace).get(external_id=external_id)
    weights = (
        CustomerLabelWeight.objects.for_workspace(workspace)
        .filter(customer=customer)
        .select_related("label__label_set")
        .order_by("label__label_set__slug", "-weight", "label__slug")
    )
    by_set: dict[str, list[dict]] = {}
    for row in weights:
        by_set.setdefault(row.label.label_set.slug, []).append(
            {
                "label_id": row.label_id,
                "label": row.label.slug,
                "name": row.label.name,
                "weight": row.weight,
                "rate": row.alpha / (row.alpha + row.beta),
                "interval": [row.weight_low, row.weight_high],
                "thompson_share": row.thompson_share,
                "evidence": row.evidence,
                "lift": row.lift,
                "exposures": row.exposures,
                "conversions": row.conversions,
            }
        )
    habituation = (
        CustomerMessageHabituation.objects.for_workspace(workspace)
        .filter(customer=customer)
        .select_related("message")
        .order_by("-load", "message__key")[:habituation_limit]
    )
    state = CustomerState.objects.for_workspace(workspace).filter(customer=customer).first()
    return {
        "customer": customer.external_id,
        "traits": customer.traits,
        "computed_at": state.last_recompute_at if state else None,
        "weights": by_set,
        "habituation": [
            {
                "message": row.message.key,
                "subject": row.message.subject,
                "load": row.load,
                "sends": row.sends,
                "last_sent_at": row.last_sent_at,
            }
            for row in habituation
        ],
        "primed_score": state.primed_score if state else 0.0,
        "baseline_rate": state.baseline_rate if state else None,
        "signals": state.signals if state else [],
    }


# Sorts of the customers page: the key column, highest first (customers without memory last).
CUSTOMER_SORTS = {"id": None, "primed": "state__primed_score", "baseline": "state__baseline_rate"}


@dataclass(frozen=True)
class CustomersPage:
    """A page of customers and the key that continues after it ('' on the last page)."""

    rows: list[dict]
    next_after: str


def customers_page(
    *,
    workspace: Workspace,
    search: str = "",
    after: str = "",
    primed_only: bool = False,
    worn_out_only: bool = False,
    sort: str = "id",
    size: int = 50,
) -> CustomersPage:
    """Return a page of customers with their memory state, after a keyset key.

    `sort` is "id" (external id order) or one of CUSTOMER_SORTS' columns, highest first with
    ties in external-id order; then `after` is "value|external id" from the previous page.
    `primed_only` keeps the customers primed now (primed score at least PRIMED_MIN_SCORE);
    `worn_out_only` those worn out on at least one message (load at least WORN_OUT_MIN_LOAD).
    Raises ValueError for an unknown sort or a malformed key.
    """
    if sort not in CUSTOMER_SORTS:
        raise ValueError(f"sort must be one of {', '.join(CUSTOMER_SORTS)}; got {sort!r}.")
    column = CUSTOMER_SORTS[sort]
    customers = Customer.objects.for_workspace(workspace)
    if search:
        customers = customers.filter(external_id__icontains=search)
    if primed_only:
        customers = customers.filter(state__primed_score__gte=PRIMED_MIN_SCORE)
    if worn_out_only:
        worn = CustomerMessageHabituation.objects.for_workspace(workspace).filter(
            customer_id=OuterRef("pk"), load__gte=WORN_OUT_MIN_LOAD
        )
        customers = customers.filter(Exists(worn))
    fields = [
        "external_id",
        "last_seen_at",
        "state__primed_score",
        "state__baseline_rate",
        "state__last_recompute_at",
    ]
    if column is None:
        customers = customers.order_by("external_id")
        if after:
            customers = customers.filter(external_id__gt=after)
        rows = list(customers.values(*fields)[: size + 1])
    else:
        rows = _sorted_customers(
            customers, column, after, size + 1, fields, with_rest=not primed_only
        )
    more, rows = len(rows) > size, rows[:size]
    next_after = ""
    if more:
        last = rows[-1]
        next_after = (
            last["external_id"] if column is None else f"{last['sort_key']!r}|{last['external_id']}"
        )
    return CustomersPage(rows=rows, next_after=next_after)


def _sorted_customers(
    customers: QuerySet, column: str, after: str, count: int, fields: list, *, with_rest: bool
) -> list[dict]:
    """Return up to `count` customers highest `column` first (ties in external-id order) after
    the key "value|external id", then those without a value (key -1) by external id.

    Two reads, so each is served by an index: the state's (value) index, walked from the top
    with the few ties sorted after it, then the customers' (workspace, external id) index. One
    read ordering every customer by COALESCE(value, -1) sorted all of them each time.
    """
    key, external_id = None, ""
    if after:
        value, _, external_id = after.partition("|")
        try:
            key = float(value)
        except ValueError:
            key = math.nan
        if not math.isfinite(key):
            raise ValueError(f"after must be 'value|external id'; got {after!r}.")
    rows: list[dict] = []
    if key is None or key >= 0:
        # Primed scores sum logs of lifts above 1 and baselines are rates: never negative.
        valued = customers.filter(**{f"{column}__isnull": False})
        if key is not None:
            valued = valued.filter(
                Q(**{f"{column}__lt": key}) | Q(**{column: key, "external_id__gt": external_id})
            )
        rows = list(
            valued.annotate(sort_key=F(column))
            .order_by(F(column).desc(), "external_id")
            .values(*fields, "sort_key")[:count]
        )
    if len(rows) < count and with_rest:
        rest = customers.filter(Q(state__isnull=True) | Q(**{f"{column}__isnull": True}))
        if key is not None and key < 0:
            rest = rest.filter(external_id__gt=external_id)
        rows += list(
            rest.annotate(sort_key=Value(-1.0, output_field=FloatField()))
            .order_by("external_id")
            .values(*fields, "sort_key")[: count - len(rows)]
        )
    return rows


def customer_suppression(*, workspace: Workspace, external_id: str) -> SuppressedCustomer | None:
    """Return the suppression of this id, or None when its events are accepted."""
    return (
        SuppressedCustomer.objects.for_workspace(workspace)
        .filter(digest=id_digest(workspace.pk, external_id))
        .first()
    )


def customer_missing(*, workspace: Workspace, external_id: str) -> str:
    """Say why no customer answers to this id: unknown here, or deleted with suppression (so
    that a caller does not take a person who asked to be forgotten for a new one)."""
    missing = f"No customer {external_id!r} in this workspace"
    if customer_suppression(workspace=workspace, external_id=external_id) is None:
        return f"{missing}."
    return (
        f"{missing}: their data was deleted at their request and the id is suppressed (its "
        "events are refused; an owner can accept them again)."
    )


@dataclass(frozen=True)
class SuppressionLookup:
    external_id: str
    suppression: SuppressedCustomer | None  # None: their events are accepted
    stored: bool  # a customer with this id has data here


def suppression_lookup(*, workspace: Workspace, external_id: str) -> SuppressionLookup:
    """Return whether an id is suppressed, and whether it names a stored customer."""
    return SuppressionLookup(
        external_id,
        customer_suppression(workspace=workspace, external_id=external_id),
        Customer.objects.for_workspace(workspace).filter(external_id=external_id).exists(),
    )


def suppressions_count(*, workspace: Workspace) -> int:
    return SuppressedCustomer.objects.for_workspace(workspace).count()


def recent_events(*, workspace: Workspace, external_id: str, limit: int = 30) -> list[Event]:
    """Return a customer's latest events, newest first, with the message they name.

    By the customer's id, not a join on their external id: the (customer, occurred_at) index
    then yields their newest events first and the read stops after `limit`. Joined, the
    planner walked the workspace's (workspace, occurred_at) index backwards through everyone's
    events looking for theirs: 30 s a page at 10M events.
    """
    customer_id = (
        Customer.objects.for_workspace(workspace)
        .filter(external_id=external_id)
        .values_list("pk", flat=True)
        .first()
    )
    if customer_id is None:
        return []
    return list(
        Event.objects.for_workspace(workspace)
        .filter(customer_id=customer_id)
        .select_related("message")
        .order_by("-occurred_at", "-pk")[:limit]
    )


def priming_indicators(*, workspace: Workspace) -> list[dict]:
    """Return the workspace's priming indicators, strongest lift first."""
    return list(
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
            "computed_at",
        )
    )


def recompute_runs(*, workspace: Workspace, limit: int = 10) -> list[RecomputeRun]:
    """Return the workspace's latest recompute runs, newest first."""
    return list(
        RecomputeRun.objects.for_workspace(workspace)
        .defer("population")
        .order_by("-created_at")[:limit]
    )


def latest_succeeded_run(*, workspace: Workspace) -> RecomputeRun | None:
    """Return the workspace's newest successful recompute run (its population left unread)."""
    return (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status=RecomputeRun.Status.SUCCEEDED)
        .defer("population")
        .order_by("-created_at")
        .first()
    )


GLANCE_CACHE_SECONDS = 24 * 3600


def _derived_counts(workspace: Workspace) -> dict[str, int]:
    states = CustomerState.objects.for_workspace(workspace)
    return {
        "with_memory": states.count(),
        "primed_now": states.filter(primed_score__gte=PRIMED_MIN_SCORE).count(),
        "worn_out": CustomerMessageHabituation.objects.for_workspace(workspace)
        .filter(load__gte=WORN_OUT_MIN_LOAD)
        .values("customer_id")
        .distinct()
        .count(),
    }


def memory_at_a_glance(*, workspace: Workspace, run: RecomputeRun | None) -> dict:
    """Return the workspace's headline numbers: its memory's size, who is primed or worn out.

    The counts of derived rows (a scan of them) are cached per successful run, as only a run
    rewrites those rows (decision 0104); events, sends and the goal rate after a send are the
    run's own, as it counted them.
    """
    if run is None:
        derived = _derived_counts(workspace)
    else:
        # The finish time too: ids can come round again (a database restored, tests rolled back).
        finished = run.finished_at.timestamp() if run.finished_at else 0
        key = f"primer:glance:{workspace.pk}:{run.pk}:{finished}"
        derived = cache_get_or_set(
            key,
            lambda: _derived_counts(workspace),
            timeout=GLANCE_CACHE_SECONDS,
            use="the memory page's counts",
        )
    stats = run.stats if run else {}
    return {
        "customers": Customer.objects.for_workspace(workspace).count(),
        **derived,
        "as_of": run.as_of if run else None,
        "events": run.events if run else None,
        "sends": (stats.get("counts") or {}).get("sends"),
        "goal_rate_after_send": stats.get("goal_rate_after_send"),
    }


def memory_summary(*, workspace: Workspace, run: RecomputeRun | None) -> dict:
    """Return the workspace's memory as the memory page and the summary API show it.

    ``glance`` (see ``memory_at_a_glance``); ``model``: what the run's scoring model weighs
    (``features``), its calibration and row counts, and the weeks it learned from
    (``replay_levels``), or None before any model; ``label_priors``: everyone's rate per label.
    """
    stats = run.stats if run else {}
    model = stats.get("model")
    return {
        "glance": memory_at_a_glance(workspace=workspace, run=run),
        "model": None
        if model is None
        else {
            "features": scoring_model_rows(stats),
            "calibration": model["calibration"],
            "training_rows": model["training_rows"],
            "calibration_rows": model["calibration_rows"],
            "replay_levels": replay_level_rows(stats.get("replay_levels") or []),
        },
        "label_priors": label_prior_rows(stats),
    }


def scoring_model_rows(stats: dict) -> list[dict]:
    """Return what the run's scoring model weighs, largest effect first, from its stored stats.

    Each row: the feature, what it measures, its coefficient, and how the calibrated odds of the
    goal change for one standard deviation of it over the fitting rows (empty for runs stored
    before the model kept its feature scales).
    """
    model = stats.get("model") or {}
    effects = model.get("effects_per_sd") or {}
    rows = [
        {
            "feature": name,
            "meaning": FEATURE_MEANINGS.get(name, ""),
            "coefficient": model["coefficients"].get(name),
            "effect_per_sd": effect,
            "odds_per_sd": float(np.exp(effect)),
        }
        for name, effect in effects.items()
    ]
    return sorted(rows, key=lambda row: -abs(row["effect_per_sd"]))


def replay_level_rows(levels: list[dict]) -> list[dict]:
    """Return a model's replayed slices (its ``replay_levels``), newest first, with their sends'
    time span as datetimes: the goal rate after a send in each, against the model's mean p."""
    rows = []
    for level in levels:
        start = datetime.fromtimestamp(level["cut_h"] * HOUR_S, tz=UTC)
        rows.append(
            {
                **level,
                "from": start,
                "to": start + timedelta(hours=level["step_h"]),
                "gap": level["mean_p"] - level["goal_rate"],
            }
        )
    return rows


def label_prior_rows(stats: dict) -> list[dict]:
    """Return everyone's response per label of the run (the "average customer"), set by set."""
    rows = stats.get("label_priors") or []
    return sorted(rows, key=lambda row: (row["label_set"], -(row["pooled_rate"] or 0.0)))


class RunChanges(NamedTuple):
    """The configuration changes before each listed run, and those no run has seen yet."""

    by_run: dict[int, list[AuditRow]]
    pending: list[AuditRow]


def run_changes(*, workspace: Workspace, runs: list[RecomputeRun]) -> RunChanges:
    """Place each configuration change since the oldest listed run under the run it preceded.

    One read of the audit trail for the whole list; a change after the newest run is pending:
    the stored memory does not reflect it yet.
    """
    if not runs:
        return RunChanges({}, [])
    ordered = sorted(runs, key=lambda run: (run.created_at, run.pk))
    rows = audit_between(workspace=workspace, start=ordered[0].created_at, end=timezone.now())
    by_run: dict[int, list[AuditRow]] = {run.pk: [] for run in ordered}
    pending: list[AuditRow] = []
    position = 1
    for row in rows:  # oldest first, as the runs
        while position < len(ordered) and ordered[position].created_at < row.entry.at:
            position += 1
        if position < len(ordered):
            by_run[ordered[position].pk].append(row)
        else:
            pending.append(row)
    return RunChanges(by_run, pending)
