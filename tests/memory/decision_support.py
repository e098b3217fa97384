"""Plant stored next best lists and campaigns with holdouts, for the decision tests."""

from __future__ import annotations

from django.utils import timezone

from campaigns.catalogue.campaign_services import campaign_create
from campaigns.tenancy.changes import Actor
from memory.models import CustomerNextBest, RecomputeRun


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
