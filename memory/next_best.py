"""A customer's next best messages, read from the lists the recompute stored.

Reading takes one indexed query and never runs the engine. The order of the steps is the
contract: the stored list, then what may not be sent now is excluded (``offers_allowed``: the
guardrails and overrides hook in there), and only then does exploration draw, so an excluded
message is never explored (docs/decisions/0106-stored-next-best.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime

import numpy as np
from django.utils import timezone

from campaigns.models import Workspace
from memory.models import Customer, CustomerNextBest, RecomputeRun

NO_RECOMPUTE = "No recompute has run yet: there is no memory to rank messages with."
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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NextBestAnswer:
    """A customer's next best messages now, what was excluded and why, or why there are none."""

    customer: str
    offers: list[Offer]
    excluded: list[dict]  # {message, guardrail or override, reason}
    as_of: datetime | None  # the memory's time (the recompute's as-of)
    cold_start: bool  # no events of their own: the population's list
    explore: bool
    seed: int
    nothing_now: str  # "" when there are offers, else why there are none, plainly

    def as_dict(self) -> dict:
        return {**asdict(self), "offers": [offer.as_dict() for offer in self.offers]}


def stored_offers(
    *, workspace: Workspace, customer_id: int | None
) -> tuple[list[Offer], datetime | None]:
    """Return a customer's stored list (None: the population's), best first, active messages
    only, and when it was computed; one query through the (customer, rank) index."""
    rows = CustomerNextBest.objects.for_workspace(workspace).filter(message__active=True)
    if customer_id is None:
        rows = rows.filter(customer_id__isnull=True)
    else:
        rows = rows.filter(customer_id=customer_id)
    values = rows.order_by("rank").values(
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
    offers = [
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
        for row in values
    ]
    return offers, (values[0]["computed_at"] if values else None)


def offers_allowed(
    *, workspace: Workspace, customer: Customer, offers: list[Offer], now: datetime
) -> tuple[list[Offer], list[dict]]:
    """Return the offers that may be sent now and the excluded ones, each with the rule and
    why. Rules that depend on the moment (caps, quiet hours, a recent purchase) belong here;
    none is defined yet, so everything stored is allowed."""
    return offers, []


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
) -> NextBestAnswer:
    """Return a customer's next best messages now from the stored lists.

    Raises Customer.DoesNotExist for a customer the workspace does not know. Without a
    recompute, or with nothing allowed now, the answer has no offers and says why.
    """
    customer = (
        Customer.objects.for_workspace(workspace)
        .only("pk", "external_id")
        .get(external_id=external_id)
    )
    offers, as_of = stored_offers(workspace=workspace, customer_id=customer.pk)
    cold_start = False
    if not offers:
        offers, as_of = stored_offers(workspace=workspace, customer_id=None)
        cold_start = bool(offers)

    def answer(chosen: list[Offer], excluded: list[dict], nothing_now: str) -> NextBestAnswer:
        return NextBestAnswer(
            customer=external_id,
            offers=chosen,
            excluded=excluded,
            as_of=as_of,
            cold_start=cold_start,
            explore=explore,
            seed=seed,
            nothing_now=nothing_now,
        )

    if not offers:
        ran = (
            RecomputeRun.objects.for_workspace(workspace)
            .filter(status=RecomputeRun.Status.SUCCEEDED)
            .exists()
        )
        return answer([], [], NOT_STORED if ran else NO_RECOMPUTE)
    # Exclusions first: exploration only ever draws among what may be sent.
    allowed, excluded = offers_allowed(
        workspace=workspace, customer=customer, offers=offers, now=now or timezone.now()
    )
    if explore:
        allowed = explore_draws(allowed, seed=seed, customer_id=customer.pk)
    chosen = [replace(offer, rank=index) for index, offer in enumerate(allowed[:limit], 1)]
    return answer(chosen, excluded, "" if chosen else NOTHING_ALLOWED)
