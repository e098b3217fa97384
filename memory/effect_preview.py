"""What a change would do to customers' next best messages, before it is made.

Computed from the stored next best lists of a stated random sample of customers, without a
recompute (docs/decisions/0107-effect-preview.md, 0110). Each kind of change (a label's boost,
an override, a guardrail: ``PREVIEW_KINDS``) composes the rules in force now with the proposed
one; both sets go through the read path's own ``offers_allowed`` for every sampled customer,
and the tally is shared. The prompt's side (campaigns/prompts/preview.py) renders the prompts
of the sampled customers whose weights the change touches (``EffectPreview.weights``).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import numpy as np
from django.utils import timezone

from campaigns.models import Guardrail, Label, Message, Override, Workspace
from memory.audiences import trait_filter_parse
from memory.models import Customer, CustomerState
from memory.next_best import Offer, offers_allowed, stored_lists
from memory.recompute.plan import engine_config
from memory.scoring import uplift
from memory.strategy import (
    Overrides,
    StrategyContext,
    boost_rules,
    customer_moments,
    guardrail_rule,
    override_rule,
    strategy_context,
)

DEFAULT_SAMPLE = 2_000
EXAMPLE_OFFERS = 5


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """Return the 95% Wilson interval of the share that changes (0 to 1 when nothing drawn)."""
    if trials == 0:
        return 0.0, 1.0
    estimate = uplift.wilson_interval(successes, trials)
    return estimate.low, estimate.high


@dataclass(frozen=True)
class WeightChange:
    """How a change moves label weights: overrides before and after, the sampled customers
    whose weights it touches (sample order), and labels' boosts after (those it changes)."""

    before: Overrides
    after: Overrides
    customers: list[Customer]
    boosts: dict[int, float]
    now: datetime


@dataclass(frozen=True)
class EffectPreview:
    """How many sampled customers' top next best message would change, and how."""

    kind: str
    change: dict  # what was proposed, as given
    customers: int  # with memory in the workspace
    sample: int  # of them, drawn at random (seeded), with a stored list
    seed: int
    changed: int  # sampled customers whose top message changes
    share: float
    interval: tuple[float, float]  # Wilson 95% interval on the share
    label_shifts: dict[str, list[dict]]  # per label set: label, share of tops before, after
    example: dict | None  # one changed customer's top messages before and after
    note: str
    seconds: float
    touched: int = 0  # sampled customers whose rules (weights or guardrails) the change holds
    excluded: dict = field(default_factory=dict)  # newly excluded: customers, messages
    released: dict = field(default_factory=dict)  # newly allowed: customers, messages
    nothing_now: dict = field(default_factory=dict)  # customers with nothing allowed: before, after
    # For the prompt's side; not part of the answer.
    weights: WeightChange | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        data = asdict(replace(self, weights=None))
        data.pop("weights")
        return data


@dataclass(frozen=True)
class Proposal:
    """What a kind of change does to the rules: a context after (from the one now), and for a
    boost, how a stored offer's score reads before and after."""

    after: Callable[[StrategyContext], StrategyContext]
    scores: Callable[[Offer, bool], float] | None = None  # (offer, after) -> score
    touched: Callable[[Customer, StrategyContext, StrategyContext], bool] | None = None
    boosts: dict[int, float] = field(default_factory=dict)  # label id -> boost after


def _sample_ids(*, workspace: Workspace, sample: int, seed: int) -> tuple[int, list[int]]:
    """Return how many customers have memory and a seeded random sample of their ids, in the
    order drawn (so a capped part of it, as the prompts take, is random too)."""
    ids = np.fromiter(
        CustomerState.objects.for_workspace(workspace).values_list("customer_id", flat=True),
        dtype=np.int64,
    )
    chosen = np.random.default_rng(seed).choice(ids, size=min(sample, ids.size), replace=False)
    return int(ids.size), chosen.tolist()


def _message_labels(workspace: Workspace) -> dict[int, list[tuple[int, str, str]]]:
    """Return each message's labels: (label id, label set slug, label slug)."""
    links = defaultdict(list)
    for message_id, label_id, set_slug, slug in Message.labels.through.objects.filter(
        message__workspace=workspace
    ).values_list("message_id", "label_id", "label__label_set__slug", "label__slug"):
        links[message_id].append((label_id, set_slug, slug))
    return links


def _label_shifts(tops: list[tuple[int | None, int | None]], links: dict) -> dict:
    """Return per label set each label's share of tops before and after, biggest shift first."""
    drawn = max(len(tops), 1)
    shifts: dict[str, dict[str, dict]] = defaultdict(dict)
    for index, when in enumerate(("before", "after")):
        for pair in tops:
            for _, set_slug, slug in links.get(pair[index], ()) if pair[index] else ():
                row = shifts[set_slug].setdefault(slug, {"label": slug, "before": 0, "after": 0})
                row[when] += 1
    result = {}
    for set_slug, rows in shifts.items():
        listed = []
        for row in rows.values():
            before, after = row["before"] / drawn, row["after"] / drawn
            listed.append(
                {"label": row["label"], "before": before, "after": after, "shift": after - before}
            )
        listed.sort(key=lambda item: (-abs(item["shift"]), item["label"]))
        result[set_slug] = listed
    return result


def _preview(
    *,
    workspace: Workspace,
    kind: str,
    change: dict,
    proposal: Proposal,
    sample: int,
    seed: int,
    now: datetime,
    note: str,
    only: list[int] | None = None,
) -> EffectPreview:
    """Sample stored lists, read each one as the read path does under the rules now and under
    the proposed ones, and tally the customers whose top message changes."""
    started = time.perf_counter()
    customers, ids = _sample_ids(workspace=workspace, sample=sample, seed=seed)
    if only is not None:  # a change for named customers: only theirs can move
        states = CustomerState.objects.for_workspace(workspace).filter(customer_id__in=only)
        ids = sorted(states.values_list("customer_id", flat=True))
    lists = stored_lists(workspace=workspace, customer_ids=ids)
    drawn_at = {pk: index for index, pk in enumerate(ids)}
    people = sorted(
        Customer.objects.for_workspace(workspace)
        .filter(pk__in=list(lists))
        .only("pk", "external_id", "traits"),
        key=lambda c: drawn_at[c.pk],
    )
    before = strategy_context(
        workspace=workspace, customers=[c.external_id for c in people], now=now
    )
    after = proposal.after(before)
    # One read for both: the moments (with every rule's needs), weights and candidates.
    rules = before.rules + after.rules
    if rules:
        moments = customer_moments(workspace=workspace, customers=people, rules=rules, now=now)
        before.moments = after.moments = moments
    before.candidates({o.message_id for stored in lists.values() for o in stored.offers})
    touched_weights = [
        c
        for c in people
        if before.overrides.for_customer(c.external_id, c.traits)
        != after.overrides.for_customer(c.external_id, c.traits)
    ]
    own = [
        c
        for c in people
        if any(r.id for r in before.overrides.for_customer(c.external_id, c.traits))
        or any(r.id for r in after.overrides.for_customer(c.external_id, c.traits))
    ]
    before.weights_prefetch(own)
    after.learned, after.baselines = before.learned, before.baselines
    after._prior_stats = before.prior_stats if own else None

    links = _message_labels(workspace)
    tops: list[tuple[int | None, int | None]] = []
    changed: list[tuple[Customer, list, list, dict]] = []
    touched = excluded_people = excluded_messages = released_people = released_messages = 0
    nothing = {"before": 0, "after": 0}
    for customer in people:
        answers = []
        for when, context in (("before", before), ("after", after)):
            offers = list(lists[customer.pk].offers)
            if proposal.scores is not None:
                offers = [replace(o, score=proposal.scores(o, when == "after")) for o in offers]
            allowed, excluded, why = offers_allowed(
                workspace=workspace, customer=customer, offers=offers, now=now, context=context
            )
            answers.append((allowed, excluded, why))
            nothing[when] += not allowed
        (allowed_b, excluded_b, _), (allowed_a, excluded_a, why_a) = answers
        ids_b = [o.message_id for o in allowed_b]
        ids_a = [o.message_id for o in allowed_a]
        gone, back = set(ids_b) - set(ids_a), set(ids_a) - set(ids_b)
        excluded_people += bool(gone)
        excluded_messages += len(gone)
        released_people += bool(back)
        released_messages += len(back)
        if proposal.touched is not None:
            touched += proposal.touched(customer, before, after)
        else:
            touched += ids_b != ids_a or excluded_b != excluded_a
        top = (ids_b[0] if ids_b else None, ids_a[0] if ids_a else None)
        tops.append(top)
        if top[0] != top[1]:
            news = [item for item in excluded_a if item["message_id"] in gone]
            changed.append((customer, allowed_b, allowed_a, {"excluded": news, "why": why_a}))

    example = None
    if changed:
        customer, allowed_b, allowed_a, extra = min(changed, key=lambda item: item[0].external_id)
        example = {
            "customer": customer.external_id,
            "before": [{"message": o.key, "score": o.score} for o in allowed_b[:EXAMPLE_OFFERS]],
            "after": [{"message": o.key, "score": o.score} for o in allowed_a[:EXAMPLE_OFFERS]],
            "excluded": [
                {"message": item["key"], "rule": item["rule"], "reason": item["reason"]}
                for item in extra["excluded"][:EXAMPLE_OFFERS]
            ],
            "nothing_now": "" if allowed_a else extra["why"],
        }
    drawn = len(tops)
    return EffectPreview(
        kind=kind,
        change=change,
        customers=customers,
        sample=drawn,
        seed=seed,
        changed=len(changed),
        share=len(changed) / drawn if drawn else 0.0,
        interval=wilson_interval(len(changed), drawn),
        label_shifts=_label_shifts(tops, links),
        example=example,
        note=note,
        seconds=time.perf_counter() - started,
        touched=touched,
        excluded={"customers": excluded_people, "messages": excluded_messages},
        released={"customers": released_people, "messages": released_messages},
        nothing_now=nothing,
        weights=WeightChange(
            before.overrides,
            after.overrides,
            touched_weights,
            proposal.boosts,
            now,
        ),
    )


def _note(sample: int, seed: int) -> str:
    return (
        f"On {sample:,} customers drawn at random (seed {seed}) among those with memory, from "
        "each one's stored next best messages, with the guardrails and overrides in force now: "
        "a message outside their stored list is not re-ranked."
    )


def boost_preview(
    *,
    workspace: Workspace,
    label: Label,
    boost: float,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    now: datetime | None = None,
    by: str = "",
) -> EffectPreview:
    """Return what setting `label`'s boost to `boost` would do to sampled customers' tops.

    Each stored score is re-based on today's boosts (score - ln(boost odds) x the stored boost
    + ln(boost odds) x the mean boost now), then again with the proposed one; the boost also
    moves the overrides' layers (a pin is measured from the boosted weight).
    """
    now = now or timezone.now()
    odds = math.log(engine_config(workspace).boost_odds)
    links = _message_labels(workspace)
    labels = list(Label.objects.for_workspace(workspace).filter(active=True))
    today = {lb.pk: lb.boost for lb in labels}
    proposed = today | ({label.pk: float(boost)} if label.active else {})

    def mean(message_id: int, boosts: dict[int, float]) -> float:
        own = links.get(message_id, ())
        return sum(boosts.get(pk, 0.0) for pk, _, _ in own) / len(own) if own else 0.0

    def scores(offer: Offer, after: bool) -> float:
        return (
            offer.score
            - odds * offer.boost
            + odds * mean(offer.message_id, proposed if after else today)
        )

    def after(context: StrategyContext) -> StrategyContext:
        boosts = [rule for rule in context.overrides.boosts if rule.label_id != label.pk]
        if label.active:
            boosted = replace_model(
                label, boost=float(boost), boost_set_by=by or "you", boost_set_at=now
            )
            boosts += boost_rules([boosted])
        return replace(context, overrides=replace(context.overrides, boosts=boosts))

    proposal = Proposal(
        after=after,
        scores=scores,
        touched=lambda c, b, a: True,  # a boost is everyone's
        boosts={label.pk: proposed.get(label.pk, 0.0)},
    )
    note = _note(sample, seed)
    if not label.active:
        note += " The label is archived: its boost counts for nothing until it is restored."
    return _preview(
        workspace=workspace,
        kind="boost",
        change={"label": label.pk, "boost": float(boost)},
        proposal=proposal,
        sample=sample,
        seed=seed,
        now=now,
        note=note,
    )


def overrides_with(
    overrides: Overrides, proposed: Override, *, replaces: int | None, now: datetime
) -> Overrides:
    """Return the overrides in force with `proposed` in place of override `replaces` (or
    added); an archived, expired or retired-label proposal only takes the old one away."""
    by_customer = {
        external_id: [rule for rule in rules if rule.id != replaces]
        for external_id, rules in overrides.by_customer.items()
    }
    segments = [(f, rule) for f, rule in overrides.segments if rule.id != replaces]
    rule = override_rule(proposed)
    if proposed.active and proposed.label.active and rule.in_force(now):
        if proposed.customer_external_id:
            by_customer.setdefault(proposed.customer_external_id, []).append(rule)
        else:
            segments.append((trait_filter_parse(proposed.segment), rule))
    return Overrides(overrides.boosts, by_customer, segments)


def override_preview(
    *,
    workspace: Workspace,
    override: Override,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    now: datetime | None = None,
    change: dict | None = None,
) -> EffectPreview:
    """Return what saving `override` (unsaved; its pk, when set, is the override it edits)
    would do to sampled customers' tops. A customer's own override is previewed on them."""
    now = now or timezone.now()
    replaces = override.pk
    if replaces is not None:  # the edit is previewed as a new layer (saving makes it newest)
        override = replace_model(override, pk=None, created_at=now)

    def after(context: StrategyContext) -> StrategyContext:
        return replace(
            context,
            overrides=overrides_with(context.overrides, override, replaces=replaces, now=now),
        )

    only = None
    note = _note(sample, seed)
    external_id = override.customer_external_id
    if not external_id and replaces is not None:
        old = Override.objects.for_workspace(workspace).filter(pk=replaces).first()
        external_id = old.customer_external_id if old else ""
    if external_id:
        only = list(
            Customer.objects.for_workspace(workspace)
            .filter(external_id=external_id)
            .values_list("pk", flat=True)
        )
        note = (
            f"The override holds for one customer ({external_id}): the preview reads their "
            "stored next best messages alone, with the guardrails and overrides in force now."
        )
    return _preview(
        workspace=workspace,
        kind="override",
        change=change or {"id": replaces},
        proposal=Proposal(
            after=after,
            touched=lambda c, b, a: (
                b.overrides.for_customer(c.external_id, c.traits)
                != a.overrides.for_customer(c.external_id, c.traits)
            ),
        ),
        sample=sample,
        seed=seed,
        now=now,
        note=note,
        only=only,
    )


def guardrails_with(rules: list, proposed: Guardrail, *, replaces: int | None) -> list:
    """Return the guardrails in force with `proposed` in place of guardrail `replaces` (in its
    order) or added last; an archived proposal only takes the old one away."""
    rule = guardrail_rule(proposed)
    if not proposed.active:
        return [r for r in rules if r.id != replaces]
    kept = [rule if r.id == replaces else r for r in rules]
    if all(r.id != rule.id for r in kept):  # new, or restoring an archived one
        kept.append(rule)
    return kept


def guardrail_preview(
    *,
    workspace: Workspace,
    guardrail: Guardrail,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    now: datetime | None = None,
    change: dict | None = None,
) -> EffectPreview:
    """Return what saving `guardrail` (unsaved; its pk, when set, is the one it edits) would
    do to sampled customers' tops now (its moment: their sends, events and local time)."""
    now = now or timezone.now()

    def after(context: StrategyContext) -> StrategyContext:
        return replace(
            context, rules=guardrails_with(context.rules, guardrail, replaces=guardrail.pk)
        )

    note = _note(sample, seed) + (
        f" Guardrails are read at the moment: this is now ({now:%Y-%m-%d %H:%M} UTC)."
    )
    return _preview(
        workspace=workspace,
        kind="guardrail",
        change=change or {"id": guardrail.pk},
        proposal=Proposal(after=after),
        sample=sample,
        seed=seed,
        now=now,
        note=note,
    )


def replace_model(obj, **fields):
    """Return an unsaved copy of a model instance with these fields changed."""
    copy = type(obj)(**{f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields})
    for name, value in fields.items():
        setattr(copy, name, value)
    return copy


# The kinds of change a preview can show; each takes the workspace and its own fields.
PREVIEW_KINDS = {
    "boost": boost_preview,
    "override": override_preview,
    "guardrail": guardrail_preview,
}
