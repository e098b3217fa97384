"""The marketer's guardrails and overrides as they stand for one customer, read cheaply.

Configuration rows (a workspace has a handful) are read whole; the customer's moment reads only
their own recent events through the (customer, occurred_at) index, bounded in time and count,
never the workspace's. The rules themselves are pure (memory/scoring/guardrails.py,
overrides.py); this module gathers their inputs and applies them to a ranking.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from campaigns.models import Campaign, Guardrail, Label, Message, Override, Workspace
from memory.audiences import TraitFilter, trait_filter_parse
from memory.models import Customer, CustomerLabelWeight, CustomerState, Event, RecomputeRun
from memory.predict import memory_next_best
from memory.scoring.frames import EngineConfig
from memory.scoring.guardrails import (
    Candidate,
    Exclusion,
    Moment,
    Rule,
    Send,
    guardrail_exclusions,
)
from memory.scoring.overrides import (
    EffectiveWeight,
    Learned,
    OverrideRule,
    effective_weights,
    override_score_shift,
)

# The moment reads at most this many of the customer's sends (a week's are plenty for caps).
MOMENT_DAYS = 7
MOMENT_MAX_SENDS = 1_000
BOOST_ODDS = EngineConfig().boost_odds


def _filter_of(data) -> TraitFilter:
    """Parse a stored trait filter; one that no longer parses matches no one (fails closed)."""
    try:
        return trait_filter_parse(data)
    except Exception:
        return _NOBODY


class _Nobody(TraitFilter):
    def matches(self, traits: dict) -> bool:
        return False

    def describe(self) -> str:
        return "a filter that no longer reads"


_NOBODY = _Nobody()


def guardrail_rules(*, workspace: Workspace) -> list[Rule]:
    """Return the workspace's active guardrails as the pure rules read them, oldest first."""
    rows = (
        Guardrail.objects.for_workspace(workspace)
        .filter(active=True)
        .select_related("label")
        .order_by("created_at", "id")
    )
    return [
        Rule(
            id=g.pk,
            name=g.name,
            kind=g.kind,
            label_id=g.label_id,
            label_name=g.label.phrase if g.label else "",
            message_id=g.message_id,
            campaign_id=g.campaign_id,
            limit=g.limit,
            period=g.period,
            audience=_filter_of(g.audience) if g.kind == Guardrail.Kind.ELIGIBILITY else None,
            event_name=g.event_name,
            hours=g.hours,
            quiet_start=g.quiet_start,
            quiet_end=g.quiet_end,
        )
        for g in rows
    ]


def _boost_rules(labels: Iterable[Label]) -> list[OverrideRule]:
    return [
        OverrideRule(
            id=0,
            label_id=label.pk,
            action="raise" if label.boost > 0 else "lower",
            scope="everyone",
            value=abs(label.boost),
            set_by=label.boost_set_by,
            set_at=label.boost_set_at,
            scope_text="everyone (the label's boost)",
        )
        for label in labels
        if label.boost
    ]


def override_rule(override: Override) -> OverrideRule:
    """Return a stored override as the pure rules read it."""
    customer = override.customer_external_id
    return OverrideRule(
        id=override.pk,
        label_id=override.label_id,
        action=override.action,
        scope="customer" if customer else "segment",
        value=override.value,
        set_by=override.created_by,
        set_at=override.created_at,
        expires_at=override.expires_at,
        note=override.note,
        scope_text=f"customer {customer}" if customer else _filter_of(override.segment).describe(),
    )


@dataclass
class Overrides:
    """A workspace's overrides, read once, to be matched to customers (prompts read chunks)."""

    boosts: list[OverrideRule]
    by_customer: dict[str, list[OverrideRule]]
    segments: list[tuple[TraitFilter, OverrideRule]]

    def for_customer(self, external_id: str, traits: dict) -> list[OverrideRule]:
        """Return the rules whose scope holds this customer: boosts, segments, their own."""
        matched = [rule for trait_filter, rule in self.segments if trait_filter.matches(traits)]
        return self.boosts + matched + self.by_customer.get(external_id, [])


def overrides_of_workspace(
    *, workspace: Workspace, now: datetime | None = None, customers: Iterable[str] | None = None
) -> Overrides:
    """Read the active, unexpired overrides (only these customers' own, when named)."""
    now = now or timezone.now()
    labels = Label.objects.for_workspace(workspace).filter(active=True).exclude(boost=0)
    rows = (
        Override.objects.for_workspace(workspace)
        .filter(active=True, label__active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    )
    if customers is not None:
        rows = rows.filter(Q(customer_external_id="") | Q(customer_external_id__in=customers))
    by_customer: dict[str, list[OverrideRule]] = defaultdict(list)
    segments = []
    for row in rows.order_by("created_at", "id"):
        if row.customer_external_id:
            by_customer[row.customer_external_id].append(override_rule(row))
        else:
            segments.append((_filter_of(row.segment), override_rule(row)))
    return Overrides(_boost_rules(labels), dict(by_customer), segments)


def label_priors(*, workspace: Workspace, baseline_rate: float | None) -> dict[int, float]:
    """Return each active label's population prior for a customer of this baseline.

    As the engine's prior mean: the customer's baseline times the label's population lift
    (from the last run's stored stats, not its population blob); without a baseline, everyone's
    rate after a send carrying the label.
    """
    run = (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status=RecomputeRun.Status.SUCCEEDED)
        .only("stats")
        .order_by("-created_at")
        .first()
    )
    stats = {
        (row.get("label_set"), row.get("label")): row
        for row in ((run.stats or {}).get("label_priors") or [] if run else [])
    }
    priors = {}
    labels = Label.objects.for_workspace(workspace).filter(active=True)
    for pk, set_slug, slug in labels.values_list("pk", "label_set__slug", "slug"):
        row = stats.get((set_slug, slug))
        if not row:
            continue
        if baseline_rate is not None and row.get("population_lift") is not None:
            rate = baseline_rate * float(row["population_lift"])
        else:
            rate = row.get("pooled_rate")
        if rate is not None:
            priors[pk] = min(max(float(rate), 1e-6), 1 - 1e-6)
    return priors


def customer_weights(
    *, workspace: Workspace, customer: Customer, now: datetime | None = None
) -> dict[int, EffectiveWeight]:
    """Return the customer's label weights with provenance and the overrides in force."""
    now = now or timezone.now()
    learned = {
        label_id: Learned(weight, exposures, conversions)
        for label_id, weight, exposures, conversions in CustomerLabelWeight.objects.for_workspace(
            workspace
        )
        .filter(customer=customer)
        .values_list("label_id", "weight", "exposures", "conversions")
    }
    state = CustomerState.objects.for_workspace(workspace).filter(customer=customer).first()
    priors = label_priors(workspace=workspace, baseline_rate=state.baseline_rate if state else None)
    rules = overrides_of_workspace(
        workspace=workspace, now=now, customers=[customer.external_id]
    ).for_customer(customer.external_id, customer.traits)
    return effective_weights(learned, priors, rules, now, boost_odds=BOOST_ODDS)


def customer_moment(
    *, workspace: Workspace, customer: Customer, rules: list[Rule], now: datetime | None = None
) -> Moment:
    """Return the customer's recent sends, the last events the rules wait on, and the time."""
    now = now or timezone.now()
    own = Event.objects.for_workspace(workspace).filter(customer=customer)
    sends = list(
        own.filter(
            occurred_at__gte=now - timedelta(days=MOMENT_DAYS),
            occurred_at__lte=now,
            name=workspace.send_event,
            message__isnull=False,
        )
        .order_by("-occurred_at")
        .values_list("occurred_at", "message_id")[:MOMENT_MAX_SENDS]
    )
    labels_of: dict[int, set[int]] = defaultdict(set)
    through = Message.labels.through.objects.filter(message_id__in={m for _, m in sends})
    for message_id, label_id in through.values_list("message_id", "label_id"):
        labels_of[message_id].add(label_id)
    last_events = {}
    for name in sorted({r.event_name for r in rules if r.kind == "after_event" and r.hours}):
        window = max(r.hours for r in rules if r.event_name == name and r.hours)
        last = (
            own.filter(
                name=name, occurred_at__gt=now - timedelta(hours=window), occurred_at__lte=now
            )
            .order_by("-occurred_at")
            .values_list("occurred_at", flat=True)
            .first()
        )
        if last is not None:
            last_events[name] = last
    return Moment(
        now=now,
        time_zone=workspace.time_zone,
        sends=tuple(Send(at, m, frozenset(labels_of[m])) for at, m in sends),
        last_events=last_events,
        traits=customer.traits if isinstance(customer.traits, dict) else {},
    )


def message_candidates(
    *, workspace: Workspace, message_ids: Iterable[int] | None = None
) -> dict[int, Candidate]:
    """Return the (active) messages as candidates: their labels and active campaigns."""
    messages = Message.objects.for_workspace(workspace).filter(active=True)
    if message_ids is not None:
        messages = messages.filter(pk__in=set(message_ids))
    keys = dict(messages.values_list("pk", "key"))
    labels: dict[int, set[int]] = defaultdict(set)
    through = Message.labels.through.objects.filter(message_id__in=keys)
    for message_id, label_id in through.values_list("message_id", "label_id"):
        labels[message_id].add(label_id)
    campaigns: dict[int, set[int]] = defaultdict(set)
    in_campaigns = Campaign.messages.through.objects.filter(
        message_id__in=keys, campaign__active=True
    )
    for message_id, campaign_id in in_campaigns.values_list("message_id", "campaign_id"):
        campaigns[message_id].add(campaign_id)
    return {
        pk: Candidate(pk, key, frozenset(labels[pk]), frozenset(campaigns[pk]))
        for pk, key in keys.items()
    }


@dataclass
class Decision:
    """What guardrails and overrides make of a customer's candidates now."""

    allowed: dict[int, float]  # message id -> score shift from overrides
    excluded: list[Exclusion]
    nothing_now: str
    weights: dict[int, EffectiveWeight] = field(default_factory=dict)

    def excluded_dicts(self) -> list[dict]:
        return [item.as_dict() for item in self.excluded]


def strategy_decide(
    *,
    workspace: Workspace,
    customer: Customer,
    candidates: dict[int, Candidate] | None = None,
    now: datetime | None = None,
) -> Decision:
    """Apply the guardrails, then the overrides, to the candidates (default: active messages).

    Returns the messages allowed with how the overrides move each one's score, every exclusion
    with its guardrail or override, and why nothing may be sent now ('' when something may).
    """
    now = now or timezone.now()
    if candidates is None:
        candidates = message_candidates(workspace=workspace)
    rules = guardrail_rules(workspace=workspace)
    moment = customer_moment(workspace=workspace, customer=customer, rules=rules, now=now)
    verdict = guardrail_exclusions(candidates.values(), moment, rules)
    weights = customer_weights(workspace=workspace, customer=customer, now=now)
    names = dict(Label.objects.for_workspace(workspace).values_list("pk", "slug"))
    allowed, excluded = {}, list(verdict.excluded)
    for candidate in verdict.allowed:
        shift, exclusion = override_score_shift(candidate, weights, names)
        if exclusion is None:
            allowed[candidate.message_id] = shift
        else:
            excluded.append(exclusion)
    nothing_now = verdict.nothing_now
    if not nothing_now and candidates and not allowed:
        nothing_now = (
            "Nothing may be sent now: every message is excluded by a guardrail or override."
        )
    return Decision(allowed, excluded, nothing_now, weights)


def memory_with_provenance(
    *, workspace: Workspace, memory: dict, weights: dict[int, EffectiveWeight]
) -> dict:
    """Add each weight's provenance to a customer_memory_summary, and the overrides in force.

    Every row gains `provenance` (learned / population prior / marketer), `provenance_text`,
    `effective_weight` and the `override` that set it; `overrides` lists every label a marketer
    set for this customer (also labels of sets they were never sent), `never` those pinned to 0.
    """
    for rows in memory["weights"].values():
        for row in rows:
            found = weights.get(row["label_id"])
            if found is not None:
                row.update(_provenance_fields(found))
    labels = {
        label.pk: label
        for label in Label.objects.for_workspace(workspace)
        .filter(pk__in=[w.label_id for w in weights.values() if w.provenance == "marketer"])
        .select_related("label_set")
    }
    memory["overrides"] = [
        {
            "label_id": label_id,
            "label_set": labels[label_id].label_set.slug,
            "label": labels[label_id].slug,
            "name": labels[label_id].name,
            **_provenance_fields(weight),
        }
        for label_id, weight in sorted(weights.items())
        if weight.provenance == "marketer" and label_id in labels
    ]
    return memory


def _provenance_fields(weight: EffectiveWeight) -> dict:
    shaped = weight.as_dict()
    return {
        "effective_weight": shaped["weight"],
        "provenance": shaped["provenance"],
        "provenance_text": shaped["provenance_text"],
        "base_provenance": shaped["base_provenance"],
        "base_weight": shaped["base_weight"],
        "override": shaped["override"],
        "never": shaped["never"],
    }


def ranking_with_strategy(
    rows: list[dict], decision: Decision, *, keys: dict[int, str]
) -> list[dict]:
    """Return ranked rows (dicts with `key` and `score`) of allowed messages only, each score
    moved by its overrides' shift, re-ranked; `keys` maps message ids to keys."""
    shift_of = {keys[pk]: shift for pk, shift in decision.allowed.items() if pk in keys}
    kept = []
    for row in rows:
        if row["key"] not in shift_of:
            continue
        shift = shift_of[row["key"]]
        kept.append(row | {"override_shift": shift, "score": row["score"] + shift})
    kept.sort(key=lambda row: (-row["score"], row["key"]))
    return [row | {"rank": i} for i, row in enumerate(kept, start=1)]


def next_best_with_strategy(
    *,
    workspace: Workspace,
    customer: Customer,
    explore: bool = False,
    seed: int = 0,
    limit: int = 10,
    now: datetime | None = None,
) -> tuple[list[dict], Decision]:
    """Rank the messages guardrails and overrides allow for the customer now, best first.

    The rules run first, so the ranking (and its Thompson draw when exploring) only ever sees
    allowed messages; overrides then move each score. Raises NoMemoryYet as the ranking does.
    """
    decision = strategy_decide(workspace=workspace, customer=customer, now=now)
    if not decision.allowed:
        return [], decision
    ranked = memory_next_best(
        workspace=workspace,
        external_id=customer.external_id,
        explore=explore,
        seed=seed,
        limit=len(decision.allowed),
        only=set(decision.allowed),
    )
    keys = dict(
        Message.objects.for_workspace(workspace)
        .filter(pk__in=decision.allowed)
        .values_list("pk", "key")
    )
    rows = ranking_with_strategy(ranked.to_dicts(), decision, keys=keys)
    return rows[:limit], decision
