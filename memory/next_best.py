"""A customer's next best messages, read from the lists the recompute stored.

Reading takes one indexed query and never runs the engine. The order of the steps is the
contract: the stored list, then what may not be sent now is excluded (``offers_allowed``: the
guardrails and overrides hook in there), and only then does exploration draw, so an excluded
message is never explored (docs/decisions/0106-stored-next-best.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import NamedTuple

import numpy as np
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Workspace
from memory.models import Customer, CustomerNextBest, RecomputeRun
from memory.strategy import (
    StrategyContext,
    strategy_context,
    strategy_decide,
)

NO_RECOMPUTE = "There is no recompute yet: no memory to rank messages with."
NOT_STORED = (
    "The last recompute stored no next best messages for this customer (it ran before they "
    "were stored, or the workspace has no active messages): recompute to store them."
)
NOTHING_ALLOWED = "Nothing may be sent now: every stored message is excluded (see `excluded`)."


@dataclass(frozen=True)
class Offer:
    """One message offered, with the numbers that ranked it."""

    rank: int  # in this answer, 1 = best
    stored_rank: int  # in the stored list
    message_id: int
    key: str
    subject: str
    p_goal: float
    score: float  # logit p_goal + ln(boost odds) x the labels' mean boost
    boost: float
    pull: float  # odds multipliers: what sets the message apart for this customer
    labels: float
    wear_out: float
    spread: float  # sd of the labels' contribution (logit scale): what exploration draws with
    drawn: float | None = None  # the explored score, when exploring
    override_shift: float = 0.0  # what the overrides added to the score (decision 0260)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NextBestAnswer:
    """A customer's next best messages now, what was excluded and why, or why there are none."""

    customer: str
    offers: list[Offer]
    excluded: list[dict]  # {message_id, key, source (guardrail/override), rule_id, rule, reason}
    as_of: datetime | None  # the memory's time (the recompute's as-of)
    cold_start: bool  # no events of their own: the population's list
    explore: bool
    seed: int
    nothing_now: str  # "" when there are offers, else why there are none, plainly

    def as_dict(self) -> dict:
        return {**asdict(self), "offers": [offer.as_dict() for offer in self.offers]}


_OFFER_FIELDS = (
    "customer_id",
    "rank",
    "message_id",
    "message__key",
    "message__subject",
    "p_goal",
    "score",
    "boost",
    "pull",
    "labels",
    "wear_out",
    "spread",
    "computed_at",
)


class Stored(NamedTuple):
    """A stored list, best first, and when the recompute computed it."""

    offers: list[Offer]
    as_of: datetime | None


def stored_lists(
    *, workspace: Workspace, customer_ids: list[int | None]
) -> dict[int | None, Stored]:
    """Return the stored lists of these customers (None: the population's), active messages
    only, best first; one query through the (customer, rank) index."""
    rows = CustomerNextBest.objects.for_workspace(workspace).filter(message__active=True)
    known = [pk for pk in customer_ids if pk is not None]
    wanted = Q(customer_id__in=known) if known else Q(pk__in=[])
    if None in customer_ids:
        wanted |= Q(customer_id__isnull=True)
    lists: dict[int | None, Stored] = {}
    for row in rows.filter(wanted).order_by("customer_id", "rank").values(*_OFFER_FIELDS):
        offers, _ = lists.setdefault(row["customer_id"], Stored([], row["computed_at"]))
        offers.append(
            Offer(
                rank=row["rank"],
                stored_rank=row["rank"],
                message_id=row["message_id"],
                key=row["message__key"],
                subject=row["message__subject"],
                p_goal=row["p_goal"],
                score=row["score"],
                boost=row["boost"],
                pull=row["pull"],
                labels=row["labels"],
                wear_out=row["wear_out"],
                spread=row["spread"],
            )
        )
    return lists


def offers_allowed(
    *,
    workspace: Workspace,
    customer: Customer,
    offers: list[Offer],
    now: datetime,
    context: StrategyContext | None = None,
) -> tuple[list[Offer], list[dict], str]:
    """Return the offers that may be sent now (their scores moved by the overrides, best
    first), the excluded ones each with its guardrail or override and why, and why nothing may
    be sent now ('' when something may); docs/decisions/0260-guardrails-and-overrides.md."""
    decision = strategy_decide(
        workspace=workspace,
        customer=customer,
        message_ids=[offer.message_id for offer in offers],
        now=now,
        context=context,
    )
    allowed = [
        replace(
            offer,
            score=offer.score + decision.allowed[offer.message_id],
            override_shift=decision.allowed[offer.message_id],
        )
        for offer in offers
        if offer.message_id in decision.allowed
    ]
    allowed.sort(key=lambda offer: (-offer.score, offer.stored_rank))
    return allowed, decision.excluded_dicts(), decision.nothing_now


def explore_draws(offers: list[Offer], *, seed: int, customer_id: int) -> list[Offer]:
    """Return the offers re-ranked by one Thompson draw each: score + spread x a standard
    normal seeded by (seed, customer, message), so a message's draw does not depend on which
    others were excluded."""
    drawn = [
        replace(
            offer,
            drawn=offer.score
            + offer.spread
            * float(np.random.default_rng([seed, customer_id, offer.message_id]).standard_normal()),
        )
        for offer in offers
    ]
    return sorted(drawn, key=lambda offer: (-offer.drawn, offer.message_id))


def next_best_for(
    *,
    workspace: Workspace,
    external_id: str,
    now: datetime | None = None,
    explore: bool = False,
    seed: int = 0,
    limit: int = 10,
    context: StrategyContext | None = None,
) -> NextBestAnswer:
    """Return a customer's next best messages now from the stored lists.

    Raises Customer.DoesNotExist for a customer the workspace does not know. Without a
    recompute, or with nothing allowed now, the answer has no offers and says why.
    """
    customer = (
        Customer.objects.for_workspace(workspace)
        .only("pk", "external_id", "traits")
        .get(external_id=external_id)
    )
    (answer,) = next_best_of_customers(
        workspace=workspace,
        customers=[customer],
        now=now,
        explore=explore,
        seed=seed,
        limit=limit,
        context=context,
    )
    return answer


def next_best_of_customers(
    *,
    workspace: Workspace,
    customers: list[Customer],
    now: datetime | None = None,
    explore: bool = False,
    seed: int = 0,
    limit: int = 10,
    context: StrategyContext | None = None,
) -> list[NextBestAnswer]:
    """Return each customer's answer (as ``next_best_for``), in order, from one read."""
    lists = stored_lists(
        workspace=workspace, customer_ids=[customer.pk for customer in customers] + [None]
    )
    population = lists.get(None)
    now = now or timezone.now()
    # Guardrails, overrides and priors are read once for every customer of the request.
    if context is None:
        context = strategy_context(
            workspace=workspace, customers=[c.external_id for c in customers], now=now
        )
    if len(customers) > 1:
        context.moments_prefetch(customers)
    why_none = ""
    answers = []
    for customer in customers:
        stored = lists.get(customer.pk)
        cold_start = stored is None and population is not None
        stored = stored or population
        if stored is None:
            if not why_none:
                ran = (
                    RecomputeRun.objects.for_workspace(workspace)
                    .filter(status=RecomputeRun.Status.SUCCEEDED)
                    .exists()
                )
                why_none = NOT_STORED if ran else NO_RECOMPUTE
            answers.append(
                NextBestAnswer(customer.external_id, [], [], None, False, explore, seed, why_none)
            )
            continue
        # Exclusions first: exploration only ever draws among what may be sent.
        allowed, excluded, why = offers_allowed(
            workspace=workspace,
            customer=customer,
            offers=list(stored.offers),
            now=now,
            context=context,
        )
        if explore:
            allowed = explore_draws(allowed, seed=seed, customer_id=customer.pk)
        chosen = [replace(offer, rank=index) for index, offer in enumerate(allowed[:limit], 1)]
        answers.append(
            NextBestAnswer(
                customer=customer.external_id,
                offers=chosen,
                excluded=excluded,
                as_of=stored.as_of,
                cold_start=cold_start,
                explore=explore,
                seed=seed,
                nothing_now="" if chosen else why or NOTHING_ALLOWED,
            )
        )
    return answers
