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

import polars as pl
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Campaign, Guardrail, Label, Message, Override, Workspace
from memory.audiences import TraitFilter, trait_filter_parse
from memory.models import Customer, CustomerLabelWeight, CustomerState, Event, RecomputeRun
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
    except ValidationError:  # valid when saved (the service checks); never a 500 on read
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
    return [guardrail_rule(g) for g in rows]


def guardrail_rule(g: Guardrail) -> Rule:
    """Return a guardrail as the pure rules read it (an unsaved one's id is -1)."""
    return Rule(
        id=g.pk or -1,
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


def boost_rules(labels: Iterable[Label]) -> list[OverrideRule]:
    """Return the labels' boosts as overrides for everyone (id 0)."""
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
    """Return an override as the pure rules read it (an unsaved one's id is -1)."""
    customer = override.customer_external_id
    return OverrideRule(
        id=override.pk or -1,  # an unsaved (previewed) one; 0 would read as a boost
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
    *,
    workspace: Workspace,
    now: datetime | None = None,
    customers: Iterable[str] | None = None,
    labels: list[Label] | None = None,
) -> Overrides:
    """Read the active, unexpired overrides (only these customers' own, when named); the
    active labels' boosts from `labels` when given (else read)."""
    now = now or timezone.now()
    if labels is None:
        labels = list(Label.objects.for_workspace(workspace).filter(active=True).exclude(boost=0))
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
    return Overrides(boost_rules(labels), dict(by_customer), segments)


def label_prior_stats(*, workspace: Workspace) -> dict[int, tuple[float | None, float | None]]:
    """Return each active label's (population lift, everyone's rate) from the last run's stats
    (its stored summary, not its population blob)."""
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
    found = {}
    labels = Label.objects.for_workspace(workspace).filter(active=True)
    for pk, set_slug, slug in labels.values_list("pk", "label_set__slug", "slug"):
        row = stats.get((set_slug, slug))
        if row:
            found[pk] = (row.get("population_lift"), row.get("pooled_rate"))
    return found


def priors_for(
    stats: dict[int, tuple[float | None, float | None]], baseline_rate: float | None
) -> dict[int, float]:
    """Return each label's population prior for a customer of this baseline.

    As the engine's prior mean: the customer's baseline times the label's population lift;
    without a baseline, everyone's rate after a send carrying the label.
    """
    priors = {}
    for label_id, (lift, pooled) in stats.items():
        rate = (
            baseline_rate * float(lift)
            if baseline_rate is not None and lift is not None
            else pooled
        )
        if rate is not None:
            priors[label_id] = min(max(float(rate), 1e-6), 1 - 1e-6)
    return priors


@dataclass
class StrategyContext:
    """What every customer's decision shares: read once per request (a page of customers).

    Three queries (guardrails, overrides, labels); the last run's label priors and the
    candidates' labels are read only when a decision needs them, and then once.
    """

    workspace: Workspace
    now: datetime
    rules: list[Rule]
    overrides: Overrides
    label_names: dict[int, str]
    _prior_stats: dict | None = None
    _candidates: dict[int, Candidate] = field(default_factory=dict)
    # Moments read ahead for a burst of customers (``moments_prefetch``), by customer id.
    moments: dict[int, Moment] = field(default_factory=dict)
    # Stored weights and baselines read ahead (``weights_prefetch``), by customer id.
    learned: dict[int, dict[int, Learned]] = field(default_factory=dict)
    baselines: dict[int, float | None] = field(default_factory=dict)

    def moments_prefetch(self, customers: list[Customer]) -> None:
        """Read these customers' moments set-based, when any guardrail needs one."""
        if self.rules:
            self.moments |= customer_moments(
                workspace=self.workspace, customers=customers, rules=self.rules, now=self.now
            )

    def weights_prefetch(self, customers: list[Customer]) -> None:
        """Read these customers' stored label weights and baselines in two queries."""
        ids = [customer.pk for customer in customers if customer.pk not in self.learned]
        for lo in range(0, len(ids), MOMENT_CHUNK):
            chunk = ids[lo : lo + MOMENT_CHUNK]
            for pk in chunk:
                self.learned[pk] = {}
                self.baselines[pk] = None
            rows = CustomerLabelWeight.objects.for_workspace(self.workspace).filter(
                customer_id__in=chunk
            )
            for pk, label_id, weight, exposures, conversions in rows.values_list(
                "customer_id", "label_id", "weight", "exposures", "conversions"
            ):
                self.learned[pk][label_id] = Learned(weight, exposures, conversions)
            states = CustomerState.objects.for_workspace(self.workspace).filter(
                customer_id__in=chunk
            )
            self.baselines |= dict(states.values_list("customer_id", "baseline_rate"))

    @property
    def prior_stats(self) -> dict[int, tuple[float | None, float | None]]:
        if self._prior_stats is None:
            self._prior_stats = label_prior_stats(workspace=self.workspace)
        return self._prior_stats

    def candidates(self, message_ids: Iterable[int]) -> dict[int, Candidate]:
        """Return these messages as candidates, reading only those not read yet."""
        wanted = set(message_ids)
        missing = wanted - self._candidates.keys()
        if missing:
            self._candidates |= message_candidates(workspace=self.workspace, message_ids=missing)
        return {pk: self._candidates[pk] for pk in wanted if pk in self._candidates}


def strategy_context(
    *, workspace: Workspace, customers: Iterable[str], now: datetime | None = None
) -> StrategyContext:
    """Read the guardrails, the overrides of these customers (by external id) and of segments,
    and the labels (boosts, names), once."""
    now = now or timezone.now()
    labels = list(Label.objects.for_workspace(workspace).filter(active=True))
    overrides = overrides_of_workspace(
        workspace=workspace, now=now, customers=list(customers), labels=labels
    )
    return StrategyContext(
        workspace=workspace,
        now=now,
        rules=guardrail_rules(workspace=workspace),
        overrides=overrides,
        label_names={label.pk: label.slug for label in labels},
    )


def customer_weights(
    *,
    workspace: Workspace,
    customer: Customer,
    now: datetime | None = None,
    context: StrategyContext | None = None,
) -> dict[int, EffectiveWeight]:
    """Return the customer's label weights with provenance and the overrides in force."""
    if context is None:
        context = strategy_context(workspace=workspace, customers=[customer.external_id], now=now)
    rules = context.overrides.for_customer(customer.external_id, customer.traits)
    priors = {}
    if customer.pk in context.learned:  # read ahead for a burst
        learned = context.learned[customer.pk]
        if any(rule.id for rule in rules):
            priors = priors_for(context.prior_stats, context.baselines.get(customer.pk))
        return effective_weights(learned, priors, rules, context.now, boost_odds=BOOST_ODDS)
    learned = {
        label_id: Learned(weight, exposures, conversions)
        for label_id, weight, exposures, conversions in CustomerLabelWeight.objects.for_workspace(
            workspace
        )
        .filter(customer=customer)
        .values_list("label_id", "weight", "exposures", "conversions")
    }
    if any(rule.id for rule in rules):  # a stored override may name a label they never got
        state = CustomerState.objects.for_workspace(workspace).filter(customer=customer).first()
        priors = priors_for(context.prior_stats, state.baseline_rate if state else None)
    return effective_weights(learned, priors, rules, context.now, boost_odds=BOOST_ODDS)


def customer_moment(
    *, workspace: Workspace, customer: Customer, rules: list[Rule], now: datetime | None = None
) -> Moment:
    """Return the customer's recent sends, the last events the rules wait on, and the time."""
    now = now or timezone.now()
    return customer_moments(workspace=workspace, customers=[customer], rules=rules, now=now)[
        customer.pk
    ]


# Customers per read of a burst's moments: keeps each IN list and result set modest.
MOMENT_CHUNK = 5_000


def customer_moments(
    *, workspace: Workspace, customers: list[Customer], rules: list[Rule], now: datetime
) -> dict[int, Moment]:
    """Return each customer's moment (as ``customer_moment``), read set-based: per chunk of
    customers one read of their sends in the week, one of those messages' labels, and one per
    event name an after-event rule waits on, each through the (customer, occurred_at) index."""
    capped = any(rule.kind == "frequency_cap" for rule in rules)
    waits: dict[str, float] = {}
    for rule in rules:
        if rule.kind == "after_event" and rule.hours:
            waits[rule.event_name] = max(waits.get(rule.event_name, 0.0), rule.hours)
    sends: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    last_events: dict[int, dict[str, datetime]] = defaultdict(dict)
    for lo in range(0, len(customers), MOMENT_CHUNK):
        ids = [customer.pk for customer in customers[lo : lo + MOMENT_CHUNK]]
        own = Event.objects.for_workspace(workspace).filter(customer_id__in=ids)
        if capped:
            rows = (
                own.filter(
                    occurred_at__gte=now - timedelta(days=MOMENT_DAYS),
                    occurred_at__lte=now,
                    name=workspace.send_event,
                    message__isnull=False,
                )
                .order_by("customer_id", "-occurred_at")
                .values_list("customer_id", "occurred_at", "message_id")
            )
            for customer_id, at, message_id in rows:
                if len(sends[customer_id]) < MOMENT_MAX_SENDS:
                    sends[customer_id].append((at, message_id))
        for name, hours in sorted(waits.items()):
            rows = (
                own.filter(
                    name=name, occurred_at__gt=now - timedelta(hours=hours), occurred_at__lte=now
                )
                .order_by("customer_id", "-occurred_at")
                .values_list("customer_id", "occurred_at")
            )
            for customer_id, at in rows:
                last_events[customer_id].setdefault(name, at)
    labels_of: dict[int, set[int]] = defaultdict(set)
    sent = {message_id for rows in sends.values() for _, message_id in rows}
    if sent:
        through = Message.labels.through.objects.filter(message_id__in=sent)
        for message_id, label_id in through.values_list("message_id", "label_id"):
            labels_of[message_id].add(label_id)
    return {
        customer.pk: Moment(
            now=now,
            time_zone=workspace.time_zone,
            sends=tuple(
                Send(at, m, frozenset(labels_of[m])) for at, m in sends.get(customer.pk, [])
            ),
            last_events=dict(last_events.get(customer.pk, {})),
            traits=customer.traits if isinstance(customer.traits, dict) else {},
        )
        for customer in customers
    }


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
    message_ids: Iterable[int] | None = None,
    now: datetime | None = None,
    context: StrategyContext | None = None,
) -> Decision:
    """Apply the guardrails, then the overrides, to the candidates (or these message ids;
    default: every active message).

    Returns the messages allowed with how the overrides move each one's score, every exclusion
    with its guardrail or override, and why nothing may be sent now ('' when something may).
    A `context` (strategy_context) shares the configuration reads across customers; without a
    guardrail or an override of their own, nothing of the customer is read.
    """
    if context is None:
        context = strategy_context(workspace=workspace, customers=[customer.external_id], now=now)
    own_rules = [
        rule
        for rule in context.overrides.for_customer(customer.external_id, customer.traits)
        if rule.id  # a boost alone moves nothing beyond what the stored score carries
    ]
    if candidates is None:
        if message_ids is None:
            candidates = message_candidates(workspace=workspace)
        elif not context.rules and not own_rules:
            return Decision({pk: 0.0 for pk in message_ids}, [], "", {})
        else:
            candidates = context.candidates(message_ids)
    if not context.rules and not own_rules:
        return Decision({pk: 0.0 for pk in candidates}, [], "", {})
    moment = context.moments.get(customer.pk) or customer_moment(
        workspace=workspace, customer=customer, rules=context.rules, now=context.now
    )
    verdict = guardrail_exclusions(candidates.values(), moment, context.rules)
    weights = (
        customer_weights(workspace=workspace, customer=customer, context=context)
        if own_rules
        else {}
    )
    names = context.label_names
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


def weights_with_provenance(
    *, workspace: Workspace, chunks: Iterable, now: datetime | None = None
) -> Iterable:
    """Yield exported weight chunks (polars frames) with each weight's provenance.

    Adds `provenance` (learned / population prior / marketer), `effective_weight` (the weight
    the ranking and prompts use), `set_by`, `set_at` and `override_id` (0: the label's boost).
    Overrides are read once; a chunk reads traits and baselines only of its customers that an
    override or a boost touches.
    """
    now = now or timezone.now()
    overrides = overrides_of_workspace(workspace=workspace, now=now)
    stats = label_prior_stats(workspace=workspace)
    label_ids = {
        (set_slug, slug): pk
        for pk, set_slug, slug in Label.objects.for_workspace(workspace).values_list(
            "pk", "label_set__slug", "slug"
        )
    }
    anyone = bool(overrides.boosts or overrides.segments)
    for frame in chunks:
        provenance = [
            "learned" if sends > 0 else "population prior" for sends in frame["exposures"]
        ]
        effective = frame["weight"].to_list()
        set_by, set_at, override_id = (
            [""] * frame.height,
            [None] * frame.height,
            [None] * frame.height,
        )
        customers = set(frame["customer"].unique().to_list())
        touched = customers if anyone else customers & overrides.by_customer.keys()
        if touched:
            found = {
                external_id: (traits, baseline)
                for external_id, traits, baseline in Customer.objects.for_workspace(workspace)
                .filter(external_id__in=touched)
                .values_list("external_id", "traits", "state__baseline_rate")
            }
            rows = zip(
                frame["customer"],
                frame["label_set"],
                frame["label"],
                frame["weight"],
                frame["exposures"],
                frame["conversions"],
                strict=True,
            )
            for i, (customer, set_slug, slug, weight, sends, goals) in enumerate(rows):
                if customer not in found:
                    continue
                label_id = label_ids.get((set_slug, slug))
                traits, baseline = found[customer]
                rules = [
                    rule
                    for rule in overrides.for_customer(customer, traits or {})
                    if rule.label_id == label_id
                ]
                if not rules:
                    continue
                result = effective_weights(
                    {label_id: Learned(weight, sends, goals)},
                    {k: v for k, v in priors_for(stats, baseline).items() if k == label_id},
                    rules,
                    now,
                    boost_odds=BOOST_ODDS,
                )[label_id]
                if result.override is None:
                    continue
                provenance[i], effective[i] = result.provenance, result.weight
                set_by[i], set_at[i] = result.override.set_by, result.override.set_at
                override_id[i] = result.override.id
        yield frame.with_columns(
            pl.Series("effective_weight", effective, dtype=pl.Float64),
            pl.Series("provenance", provenance, dtype=pl.Utf8),
            pl.Series("set_by", set_by, dtype=pl.Utf8),
            pl.Series("set_at", set_at, dtype=pl.Datetime("us", "UTC")),
            pl.Series("override_id", override_id, dtype=pl.Int64),
        )
