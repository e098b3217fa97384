"""Celery tasks of the memory engine: thin, ids in, one service call each, idempotent."""

import logging

from celery import chord, shared_task
from django.core.cache import cache
from django.db import OperationalError

from memory import recompute
from memory.ingest import outbox

logger = logging.getLogger(__name__)

RETRY = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 5,
    "acks_late": True,
}


@shared_task(name="memory.recompute_population", **RETRY)
def recompute_population(run_id: int) -> None:
    recompute.recompute_population(run_id=run_id)


@shared_task(name="memory.recompute_dispatch", **RETRY)
def recompute_dispatch(run_id: int) -> None:
    """Fan the run's shards out to the workers; the swap runs when every shard is done."""
    shards = recompute.recompute_shard_indices(run_id=run_id)
    chord(recompute_shard.si(run_id, index) for index in shards)(
        recompute_finish.si(run_id).on_error(recompute_failed.s(run_id))
    )


@shared_task(name="memory.recompute_shard", **RETRY)
def recompute_shard(run_id: int, index: int) -> None:
    recompute.recompute_shard(run_id=run_id, index=index)


@shared_task(name="memory.recompute_finish", **RETRY)
def recompute_finish(run_id: int) -> None:
    recompute.recompute_finish(run_id=run_id)


@shared_task(name="memory.recompute_failed")
def recompute_failed(request, exc, traceback, run_id: int) -> None:
    recompute.recompute_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(name="memory.recompute_workspace", **RETRY)
def recompute_workspace(workspace_id: int, incremental: bool = True) -> None:
    """Start a recompute of one workspace (the debounced and periodic entry point)."""
    cache.delete(recompute.pending_key(workspace_id))
    recompute.recompute_enqueue(workspace_id=workspace_id, incremental=incremental)


@shared_task(name="memory.recompute_outbox_drain")
def recompute_outbox_drain() -> None:
    """Queue the debounced recomputes recorded while Redis did not answer (every minute)."""
    outbox.recompute_outbox_drain()


@shared_task(name="memory.recompute_all_workspaces")
def recompute_all_workspaces() -> None:
    """Queue a full recompute of every workspace (the beat schedule's nightly job)."""
    for workspace_id in recompute.workspace_ids():
        recompute_workspace.delay(workspace_id, incremental=False)
