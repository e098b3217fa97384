"""Serve and log decisions (matching them to sends: memory/decision_matching.py).

Every recommendation Primer serves (the next-best API and command, a campaign's prompt and its
export) is a Decision: whom, among which eligible messages, which one, with what probability,
from which memory run, in which holdout arm. Serving explores by default (message-level
Thompson with a floor, memory/scoring/exploration.py), so the logged propensity makes the
decisions evaluable later. Everything is set-based: a burst of decisions is one COPY
(docs/decisions/0600).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import numpy as np
import polars as pl
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Workspace
from memory.models import Customer, Decision, RecomputeRun
from memory.next_best import NOTHING_ALLOWED, Offer, offers_allowed, stored_lists
from memory.scoring.exploration import (
    NO_MEMORY,
    RANDOM,
    assign_arm,
    choose,
    epsilon_propensities,
    explore_propensities,
    top_propensities,
    uniform_propensities,
)
from memory.strategy import strategy_context

_JSON = msgspec.json.Encoder()
# The logged policy of an explored decision: the campaign's exploration.
THOMPSON, EPSILON = Campaign.Exploration.THOMPSON.value, Campaign.Exploration.EPSILON.value
CANDIDATE_SCHEMA = {
    "customer_id": pl.Int64,
    "message_id": pl.Int64,
    "score": pl.Float64,
    "spread": pl.Float64,
}


@dataclass(frozen=True)
class ServedDecision:
    """One served decision: the message, its propensity and every eligible message's."""

    public_id: str
    customer_id: int
    arm: str
    policy: str
    message_id: int
    propensity: float
    primer_message_id: int
    eligible: list[int]  # best first (Primer's score)
    propensities: list[float]  # the probability each eligible message had, same order

    def as_dict(self) -> dict:
        return {
            "decision_id": self.public_id,
            "arm": self.arm,
            "policy": self.policy,
            "message_id": self.message_id,
            "propensity": self.propensity,
        }


def campaign_arms(*, campaign: Campaign | None, customer_ids: list[int]) -> dict[int, str]:
    """Return each customer's arm in the campaign (stable hash; '' without a campaign)."""
    if campaign is None:
        return dict.fromkeys(customer_ids, "")
    shares = campaign.holdout_shares
    return {
        customer_id: assign_arm(campaign.workspace_id, campaign.pk, customer_id, shares)
        for customer_id in customer_ids
    }


def latest_run_id(*, workspace: Workspace) -> int | None:
    """Return the id of the workspace's latest successful recompute, if any."""
    return (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status=RecomputeRun.Status.SUCCEEDED)
        .order_by("-finished_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )


def decision_policy(
    candidates: pl.DataFrame,
    arms: dict[int, str],
    *,
    explore: bool,
    seed: int = 0,
    explore_share: float | None = None,
) -> pl.DataFrame:
    """Return the candidates, best first per customer, with each one's propensity under the
    customer's arm's policy and the policy's name.

    ``candidates`` (CANDIDATE_SCHEMA) are each customer's *eligible* messages, after every
    guardrail and override: nothing excluded is ever explored. The random arm chooses uniformly;
    every other arm explores by floored Thompson draws, or with ``explore_share`` serves the top
    score but for that share of decisions drawn uniformly (a campaign's choice); without
    ``explore`` it takes the top score (propensity 1).
    """
    ordered = candidates.sort(
        ["customer_id", "score", "message_id"], descending=[False, True, False]
    )
    group = ordered["customer_id"].to_numpy()
    random_rows = np.array([arms.get(int(c), "") == RANDOM for c in group], dtype=bool)
    propensity = np.zeros(ordered.height)
    if random_rows.any():
        propensity[random_rows] = uniform_propensities(group[random_rows])
    rest = ~random_rows
    if rest.any():
        score = ordered["score"].to_numpy()[rest]
        spread = ordered["spread"].fill_null(0.0).to_numpy()[rest]
        if not explore:
            propensity[rest] = top_propensities(group[rest], score)
        elif explore_share is not None:
            propensity[rest] = epsilon_propensities(group[rest], score, share=explore_share)
        else:
            propensity[rest] = explore_propensities(group[rest], score, spread, seed=seed)
    explored = EPSILON if explore_share is not None else THOMPSON
    policy = np.where(random_rows, "uniform", explored if explore else "top")
    return ordered.with_columns(
        pl.Series("propensity", propensity), pl.Series("policy", policy, dtype=pl.Utf8)
    )


def decisions_serve(
    *,
    workspace: Workspace,
    candidates: pl.DataFrame,
    source: str,
    campaign: Campaign | None = None,
    arms: dict[int, str] | None = None,
    explore: bool = True,
    record: bool = True,
    decided_at: datetime | None = None,
    run_id: int | None = None,
    seed: int = 0,
) -> list[ServedDecision]:
    """Choose one message per customer among their eligible candidates and log each choice.

    A campaign set to explore a fixed share (``exploration`` epsilon) serves its best message
    but for that share; otherwise Primer explores by Thompson draws.
    ``arms`` defaults to the campaign's assignment; for the no-memory arm the caller passes the
    population's candidates. ``seed`` fixes the Thompson draws (so a propensity can be checked
    again); the choice itself uses fresh randomness. Customers without candidates get none.
    """
    if candidates.is_empty():
        return []
    customer_ids = candidates["customer_id"].unique().sort().to_list()
    arms = arms if arms is not None else campaign_arms(campaign=campaign, customer_ids=customer_ids)
    explore_share = (
        campaign.explore_share
        if campaign is not None and campaign.exploration == Campaign.Exploration.EPSILON
        else None
    )
    ordered = decision_policy(
        candidates, arms, explore=explore, seed=seed, explore_share=explore_share
    )
    group = ordered["customer_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], group.size]
    rng = np.random.default_rng(secrets.randbits(64))
    chosen = choose(group, ordered["propensity"].to_numpy(), rng.random(starts.size))
    messages = ordered["message_id"].to_list()
    propensities = ordered["propensity"].to_list()
    policies = ordered["policy"].to_list()
    # Random 128-bit public ids, drawn at once (one system call, not one per decision).
    hex_ids = secrets.token_hex(16 * starts.size)
    served = [
        ServedDecision(
            public_id=hex_ids[32 * n : 32 * n + 32],
            customer_id=int(group[start]),
            arm=arms.get(int(group[start]), ""),
            policy=policies[start],
            message_id=messages[pick],
            propensity=propensities[pick],
            primer_message_id=messages[start],
            eligible=messages[start:end],
            propensities=propensities[start:end],
        )
        for n, (start, end, pick) in enumerate(
            zip(starts.tolist(), ends.tolist(), chosen.tolist(), strict=True)
        )
    ]
    if record:
        decisions_record(
            workspace=workspace,
            served=served,
            source=source,
            campaign=campaign,
            decided_at=decided_at or timezone.now(),
            run_id=run_id if run_id is not None else latest_run_id(workspace=workspace),
        )
    return served


_COLUMNS = (
    "workspace_id",
    "public_id",
    "customer_id",
    "campaign_id",
    "run_id",
    "source",
    "arm",
    "policy",
    "eligible",
    "eligible_count",
    "propensities",
    "message_id",
    "propensity",
    "primer_message_id",
    "decided_at",
    "window_h",
    "expires_at",
    "matched_by",
)


def stored_candidates(
    *,
    workspace: Workspace,
    customers: list[Customer],
    message_ids: Collection[int] | None = None,
    without_memory: Collection[int] = (),
    now: datetime | None = None,
) -> pl.DataFrame:
    """Return what each customer may be served now, as candidates (CANDIDATE_SCHEMA).

    The stored lists in one read (``stored_lists``), the population's for a customer without
    one of their own or in ``without_memory`` (the no-memory arm); then ``offers_allowed``
    (guardrails and overrides) per customer, so nothing excluded is ever explored; then only
    ``message_ids`` (a campaign's) when given.
    """
    lists = stored_lists(workspace=workspace, customer_ids=[c.pk for c in customers] + [None])
    population, now = lists.get(None), now or timezone.now()
    # The configuration once for the burst, and every customer's moment in a few reads.
    context = strategy_context(
        workspace=workspace, customers=[c.external_id for c in customers], now=now
    )
    context.moments_prefetch(customers)
    rows = []
    for customer in customers:
        stored = population if customer.pk in without_memory else lists.get(customer.pk)
        stored = stored or population
        if stored is None:
            continue
        # The strategy's version also says why nothing may be sent: the first two suffice.
        allowed = offers_allowed(
            workspace=workspace,
            customer=customer,
            offers=list(stored.offers),
            now=now,
            context=context,
        )[0]
        rows += [
            (customer.pk, offer.message_id, offer.score, offer.spread)
            for offer in allowed
            if message_ids is None or offer.message_id in message_ids
        ]
    return pl.DataFrame(rows, schema=CANDIDATE_SCHEMA, orient="row")


def customers_decisions_serve(
    *,
    workspace: Workspace,
    customer_ids: list[int],
    source: str,
    campaign: Campaign | None = None,
    explore: bool = True,
) -> dict[int, ServedDecision]:
    """Serve each customer one message and log the decisions in one statement (a burst).

    With a campaign: among its messages, by the customer's arm (Primer's arm explores over the
    customer's stored scores, the no-memory arm over the population's, the random arm chooses
    uniformly); a customer none of whose allowed stored messages is the campaign's gets no
    decision. Without one: among every allowed stored message, exploring.
    """
    message_ids = None
    if campaign is not None:
        message_ids = set(campaign.messages.values_list("pk", flat=True))
        if not message_ids:
            return {}
    if not customer_ids:
        return {}
    arms = campaign_arms(campaign=campaign, customer_ids=customer_ids)
    customers = list(
        Customer.objects.for_workspace(workspace)
        .filter(pk__in=customer_ids)
        .only("pk", "external_id", "traits")
    )
    candidates = stored_candidates(
        workspace=workspace,
        customers=customers,
        message_ids=message_ids,
        without_memory=[c for c, arm in arms.items() if arm == NO_MEMORY],
    )
    served = decisions_serve(
        workspace=workspace,
        candidates=candidates,
        source=source,
        campaign=campaign,
        arms=arms,
        explore=explore,
    )
    return {item.customer_id: item for item in served}


@dataclass(frozen=True)
class NextBestDecision:
    """A customer's served next best message: the decision, what it chose among, and why."""

    arm: str
    decision: ServedDecision | None
    offers: list[Offer]  # the eligible offers, best first (Primer's score)
    excluded: list[dict]
    cold_start: bool
    nothing_now: str

    def as_dict(self) -> dict:
        """Return the decision as the API answers it (null when nothing could be served)."""
        if self.decision is None:
            return {"arm": self.arm, "decision": None}
        by_id = {offer.message_id: offer for offer in self.offers}
        item = self.decision
        return {
            "arm": self.arm,
            "decision": {
                **item.as_dict(),
                "key": by_id[item.message_id].key,
                "primer_message_id": item.primer_message_id,
                "eligible": [
                    {"message_id": m, "key": by_id[m].key, "propensity": p}
                    for m, p in zip(item.eligible, item.propensities, strict=True)
                ],
            },
        }


def next_best_decide(
    *,
    workspace: Workspace,
    external_id: str,
    source: str,
    campaign: Campaign | None = None,
    explore: bool = True,
    now: datetime | None = None,
) -> NextBestDecision:
    """Serve one customer's next best message now, and log it: the stored list (the
    population's in the no-memory arm or without one of their own), then what may be sent now
    (``offers_allowed``: guardrails and overrides), then the campaign's messages, and only then
    the arm's policy chooses. Raises Customer.DoesNotExist for an unknown customer."""
    customer = (
        Customer.objects.for_workspace(workspace)
        .only("pk", "external_id")
        .get(external_id=external_id)
    )
    arm = campaign_arms(campaign=campaign, customer_ids=[customer.pk])[customer.pk]
    lists = stored_lists(workspace=workspace, customer_ids=[customer.pk, None])
    own, population = lists.get(customer.pk), lists.get(None)
    stored = population if arm == NO_MEMORY else (own or population)
    cold_start = arm != NO_MEMORY and own is None and population is not None
    offers = list(stored.offers) if stored else []
    allowed, excluded = offers_allowed(
        workspace=workspace, customer=customer, offers=offers, now=now or timezone.now()
    )[:2]
    if campaign is not None:
        mine = set(campaign.messages.values_list("pk", flat=True))
        allowed = [offer for offer in allowed if offer.message_id in mine]
    if not allowed:
        why = NOTHING_ALLOWED if offers else "No stored next best message to choose among."
        return NextBestDecision(arm, None, [], excluded, cold_start, why)
    served = decisions_serve(
        workspace=workspace,
        candidates=pl.DataFrame(
            [(customer.pk, o.message_id, o.score, o.spread) for o in allowed],
            schema=CANDIDATE_SCHEMA,
            orient="row",
        ),
        source=source,
        campaign=campaign,
        arms={customer.pk: arm},
        explore=explore,
    )
    return NextBestDecision(arm, served[0], allowed, excluded, cold_start, "")


def decisions_record(
    *,
    workspace: Workspace,
    served: list[ServedDecision],
    source: str,
    campaign: Campaign | None,
    decided_at: datetime,
    run_id: int | None,
) -> int:
    """Store served decisions in one statement (COPY on PostgreSQL); return how many."""
    if not served:
        return 0
    window_h = (
        campaign.effective_attribution_window_h if campaign else workspace.attribution_window_h
    )
    expires_at = decided_at + timedelta(hours=window_h)
    shared = {
        "workspace_id": workspace.pk,
        "campaign_id": campaign.pk if campaign else None,
        "run_id": run_id,
        "source": source,
        "decided_at": decided_at,
        "window_h": window_h,
        "expires_at": expires_at,
        "matched_by": "",
    }
    if connection.vendor == "postgresql":
        _copy_decisions(served, shared)
        return len(served)
    Decision.objects.all_workspaces().bulk_create(
        [
            Decision(
                **shared,
                public_id=item.public_id,
                customer_id=item.customer_id,
                arm=item.arm,
                policy=item.policy,
                eligible=item.eligible,
                eligible_count=len(item.eligible),
                propensities=[round(p, 6) for p in item.propensities],
                message_id=item.message_id,
                propensity=item.propensity,
                primer_message_id=item.primer_message_id,
            )
            for item in served
        ],
        batch_size=2000,
    )
    return len(served)


def _copy_decisions(served: list[ServedDecision], shared: dict) -> None:
    """COPY the decisions as text lines built in one pass: every value is a number, a hex id,
    a fixed word or a timestamp, so nothing needs escaping."""
    null = "\\N"
    fixed = {
        name: null if value is None else value.isoformat() if hasattr(value, "isoformat") else value
        for name, value in shared.items()
    }
    lines = []
    for item in served:
        values = {
            **fixed,
            "public_id": item.public_id,
            "customer_id": item.customer_id,
            "arm": item.arm,
            "policy": item.policy,
            "eligible": _JSON.encode(item.eligible).decode(),
            "eligible_count": len(item.eligible),
            "propensities": _JSON.encode([round(p, 6) for p in item.propensities]).decode(),
            "message_id": item.message_id,
            "propensity": repr(float(item.propensity)),
            "primer_message_id": item.primer_message_id,
        }
        lines.append("\t".join(str(values[name]) for name in _COLUMNS))
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        with raw.copy(f"COPY memory_decision ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            copy.write("\n".join(lines) + "\n")
