"""Plant stored next best lists and campaigns with holdouts, for the decision tests."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from campaigns.catalogue.campaign_services import campaign_create
from campaigns.tenancy.changes import Actor
from memory.models import CustomerNextBest, Decision, RecomputeRun
from memory.scoring.exploration import RANDOM


def plant_next_best(workspace, customer, scored: list[tuple], *, spread: float = 0.5) -> None:
    """Store a next best list: scored is [(message, score)], best first; customer None is the
    population's list."""
    now = timezone.now()
    CustomerNextBest.objects.bulk_create(
        CustomerNextBest(
            workspace=workspace,
            customer=customer,
            message=message,
            rank=rank,
            score=score,
            p_goal=0.5,
            boost=0.0,
            pull=1.0,
            labels=1.0,
            wear_out=1.0,
            spread=spread,
            cold_start=customer is None,
            computed_at=now,
        )
        for rank, (message, score) in enumerate(scored, 1)
    )


def succeeded_run(workspace) -> RecomputeRun:
    return RecomputeRun.objects.create(
        workspace=workspace,
        status=RecomputeRun.Status.SUCCEEDED,
        as_of=timezone.now(),
        finished_at=timezone.now(),
    )


def holdout_campaign(workspace, messages, *, random=0.3, no_memory=0.2, window_h=24.0):
    return campaign_create(
        workspace=workspace,
        actor=Actor.system(),
        slug="spring",
        name="Spring",
        attribution_window_h=window_h,
        messages=messages,
        holdout_random=random,
        holdout_no_memory=no_memory,
    )


def decide(workspace, campaign, person, arm, served, primer, *, goal, revenue, resolved=True):
    """A decision of the campaign served three days ago between two messages (unsaved)."""
    now = timezone.now()
    return Decision(
        workspace=workspace,
        public_id=uuid.uuid4().hex,
        customer=person,
        campaign=campaign,
        source="prompt",
        arm=arm,
        policy="uniform" if arm == RANDOM else "thompson",
        eligible=[served.pk, primer.pk],
        eligible_count=2,
        propensities=[0.5, 0.5],
        message=served,
        propensity=0.5,
        primer_message=primer,
        decided_at=now - timedelta(days=3),
        window_h=24.0,
        expires_at=now,
        goal=goal if resolved else None,
        revenue=revenue if resolved else None,
        resolved_at=now if resolved else None,
    )
