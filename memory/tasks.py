"""Celery tasks of the memory engine: thin, ids in, one service call each, idempotent."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from campaigns.models import Workspace
from memory import decision_matching
from memory.imports import event_import_run
from memory.ingest import outbox
from memory.recompute import chord
from memory.recompute.service import (
    DEBOUNCE_S,
    BrokerUnavailable,
    broker_check,
    recompute_expire_stale,
    recompute_on_schedule,
    workspace_ids,
)
from memory.recompute.steps import run_fail

logger = logging.getLogger(__name__)

RETRY = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 5,
    "acks_late": True,
}


@shared_task(name=chord.POPULATION_TASK, **RETRY)
def recompute_population(run_id: int) -> None:
    chord.population_on_worker(run_id=run_id)


@shared_task(name=chord.DISPATCH_TASK, **RETRY)
def recompute_dispatch(run_id: int) -> None:
    """Fan the run's shards out to the workers; the swap runs when every shard is done."""
    chord.shards_fan_out(run_id=run_id)


@shared_task(name=chord.SHARD_TASK, **RETRY)
def recompute_shard(run_id: int, index: int) -> None:
    chord.shard_on_worker(run_id=run_id, index=index)


@shared_task(name=chord.FINISH_TASK, **RETRY)
def recompute_finish(run_id: int) -> None:
    chord.finish_on_worker(run_id=run_id)


@shared_task(name=chord.FAILED_TASK)
def recompute_failed(request, exc, traceback, run_id: int) -> None:
    run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(name=chord.WORKSPACE_TASK, **RETRY)
def recompute_workspace(workspace_id: int, incremental: bool = True) -> None:
    """Start a recompute of one workspace (the debounced and periodic entry point).

    If a run was in progress, ask again after the debounce: it was planned before the events
    (or the nightly full run) this request stands for.
    """
    asked = recompute_on_schedule(workspace_id=workspace_id, incremental=incremental)
    if not asked.started:
        recompute_workspace.apply_async((workspace_id, incremental), countdown=DEBOUNCE_S)


@shared_task(name="memory.recompute_outbox_drain")
def recompute_outbox_drain() -> None:
    """Queue the debounced recomputes recorded while Redis did not answer (every minute)."""
    outbox.recompute_outbox_drain()


@shared_task(name="memory.recompute_expire_stale")
def recompute_expire_stale_runs() -> None:
    """Mark failed the runs never picked up or whose process died (every five minutes)."""
    recompute_expire_stale()


@shared_task(name=chord.ALL_WORKSPACES_TASK)
def recompute_all_workspaces() -> None:
    """Queue a full recompute of every workspace (the beat schedule's nightly job)."""
    for workspace_id in workspace_ids():
        recompute_workspace.delay(workspace_id, incremental=False)


@shared_task(name="memory.event_import", **RETRY)
def event_import(import_id: int) -> None:
    """Run one uploaded import (a finished or already running one is left alone)."""
    event_import_run(job_id=import_id)


@shared_task(name="memory.decisions_match", **RETRY)
def decisions_match(workspace_id: int, count_every_campaign: bool = False) -> dict:
    """Match one workspace's served decisions to their sends and resolve closed windows."""
    summary = decision_matching.decisions_match(
        workspace=Workspace.objects.get(pk=workspace_id),
        count_every_campaign=count_every_campaign,
    )
    return {"named": summary.named, "windowed": summary.windowed, "resolved": summary.resolved}


def decisions_match_now(*, workspace_id: int) -> dict | None:
    """Match and count one workspace's decisions now, as the beat does every 5 minutes: here
    with in-process tasks (return what was matched), else queued on the workers (None).
    Raise BrokerUnavailable when no broker answers (nothing is queued)."""
    # Every campaign is counted, so that whoever asked sees a count newer than their request.
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return decisions_match.apply(args=[workspace_id, True]).get()
    broker_check("a matching", BrokerUnavailable)
    decisions_match.delay(workspace_id, True)
    return None


@shared_task(name="memory.decisions_match_all")
def decisions_match_all() -> None:
    """Queue the matching of every workspace with decisions pending (the beat's job)."""
    for workspace_id in decision_matching.workspaces_with_pending_decisions():
        decisions_match.delay(workspace_id)
