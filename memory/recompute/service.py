"""Start recomputes: here or on the workers, asked for now or debounced after ingestion."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.conf import settings
from django.core.cache import cache

from campaigns.models import Workspace
from memory.db import writeback
from memory.models import RecomputeRun
from memory.recompute.chord import ChordRunner
from memory.recompute.plan import RecomputePlan, recompute_start
from memory.recompute.runners import InProcessRunner, Progress, Runner, StreamedRunner

Requester = Literal["page", "api", "command", "schedule"]

# Debounce: after ingestion, one incremental recompute per workspace per this many seconds.
DEBOUNCE_S = 60


def recompute_request(
    *,
    workspace: Workspace,
    as_of: datetime | None = None,
    incremental: bool = False,
    requested_by: Requester,
    on_workers: bool | None = None,
    on_progress: Progress | None = None,
) -> RecomputeRun:
    """Start a recompute: here if no worker would take it, else queued on the workers.

    `on_workers`: None decides by the broker (without one tasks run eagerly, so here); the
    command line says which it wants. A run here is finished when returned, a queued one not.
    """
    if on_workers is None:
        on_workers = not settings.CELERY_TASK_ALWAYS_EAGER
    plan = recompute_start(
        workspace=workspace, as_of=as_of, incremental=incremental, requested_by=requested_by
    )
    return recompute_runner(plan=plan, on_workers=on_workers, on_progress=on_progress).run(plan)


def recompute_runner(
    *, plan: RecomputePlan, on_workers: bool, on_progress: Progress | None = None
) -> Runner:
    """Return the runner for a plan: the workers' chord, or a streamed or bucketed run here."""
    if on_workers:
        return ChordRunner()
    if plan.customer_ids is None and writeback.partitioned():
        return StreamedRunner(on_progress)
    return InProcessRunner(on_progress)


def recompute_on_schedule(*, workspace_id: int, incremental: bool) -> RecomputeRun:
    """Start the debounced or periodic recompute of a workspace on the workers."""
    cache.delete(pending_key(workspace_id))
    return recompute_request(
        workspace=Workspace.objects.get(pk=workspace_id),
        incremental=incremental,
        requested_by="schedule",
        on_workers=True,
    )


def recompute_resume(*, run_id: int) -> None:
    """Re-dispatch a run's missing shards (e.g. after a worker died); finished ones stay."""
    runs = RecomputeRun.objects.all_workspaces().filter(pk=run_id)
    if runs.filter(status=RecomputeRun.Status.SUCCEEDED).exists():
        return
    runs.update(status=RecomputeRun.Status.RUNNING, error="")
    ChordRunner().dispatch(run_id=run_id)


def pending_key(workspace_id: int) -> str:
    return f"primer:recompute-pending:{workspace_id}"


def workspace_ids() -> list[int]:
    return list(Workspace.objects.order_by("pk").values_list("pk", flat=True))
