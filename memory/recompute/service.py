"""Start recomputes: here or on the workers, asked for now or debounced after ingestion."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from campaigns.models import Workspace
from memory.db import writeback
from memory.models import RecomputeRun
from memory.recompute.chord import ChordRunner
from memory.recompute.plan import RecomputePlan, recompute_start
from memory.recompute.runners import InProcessRunner, Progress, Runner, StreamedRunner
from memory.recompute.steps import run_fail

Requester = Literal["page", "api", "command", "schedule"]

# Debounce: after ingestion, one incremental recompute per workspace per this many seconds.
DEBOUNCE_S = 60
ACTIVE = (RecomputeRun.Status.QUEUED, RecomputeRun.Status.RUNNING)
# How long the broker may take to answer before a recompute is refused as unavailable.
BROKER_CHECK_TIMEOUT_S = 2.0


class BrokerUnavailable(Exception):
    """No broker answered, so work queued now would wait forever: nothing was queued."""


class RecomputeUnavailable(BrokerUnavailable):
    """No broker answered, so a run queued now would wait forever: nothing was started."""


class RecomputeAsked(NamedTuple):
    """The run that answers a request, and whether the request started it."""

    run: RecomputeRun
    started: bool


def recompute_request(
    *,
    workspace: Workspace,
    as_of: datetime | None = None,
    incremental: bool = False,
    requested_by: Requester,
    on_workers: bool | None = None,
    on_progress: Progress | None = None,
) -> RecomputeRun:
    """Start a recompute, or return the one in progress (see recompute_ask)."""
    return recompute_ask(
        workspace=workspace,
        as_of=as_of,
        incremental=incremental,
        requested_by=requested_by,
        on_workers=on_workers,
        on_progress=on_progress,
    ).run


def recompute_ask(
    *,
    workspace: Workspace,
    as_of: datetime | None = None,
    incremental: bool = False,
    requested_by: Requester,
    on_workers: bool | None = None,
    on_progress: Progress | None = None,
) -> RecomputeAsked:
    """Start a recompute: here if no worker would take it, else queued on the workers.

    At most one run per workspace is queued or running: a request while one is answers with
    that run, except that a full run replaces a queued (not yet running) incremental one.
    `on_workers`: None decides by the broker (without one tasks run eagerly, so here); the
    command line says which it wants. A run here is finished when returned, a queued one not.
    Raise RecomputeUnavailable when the run would be queued but no broker answers.
    """
    if on_workers is None:
        on_workers = not settings.CELERY_TASK_ALWAYS_EAGER
    if on_workers:
        broker_check()
    with transaction.atomic():
        # The workspace's row serialises requests, so two cannot both find no active run.
        list(Workspace.objects.select_for_update().filter(pk=workspace.pk).values_list("pk"))
        recompute_expire_stale(workspace=workspace)
        active = (
            RecomputeRun.objects.for_workspace(workspace)
            .filter(status__in=ACTIVE)
            .defer("population")
            .order_by("-created_at")
            .first()
        )
        if active is not None:
            supersedes = (
                not incremental
                and active.mode == RecomputeRun.Mode.INCREMENTAL
                and active.status == RecomputeRun.Status.QUEUED
            )
            if not supersedes:
                return RecomputeAsked(active, started=False)
        plan = recompute_start(
            workspace=workspace, as_of=as_of, incremental=incremental, requested_by=requested_by
        )
        if active is not None:
            run_fail(run_id=active.pk, error=f"Superseded by full recompute {plan.run_id}.")
    runner = recompute_runner(plan=plan, on_workers=on_workers, on_progress=on_progress)
    run = runner.run(plan)
    if on_workers and run.status == RecomputeRun.Status.FAILED:
        raise RecomputeUnavailable(run.error)  # the broker went away after it was checked
    return RecomputeAsked(run, started=True)


def broker_check(
    what: str = "a recompute", unavailable: type[BrokerUnavailable] = RecomputeUnavailable
) -> None:
    """Raise `unavailable` unless the task broker accepts a connection now."""
    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, timeout=BROKER_CHECK_TIMEOUT_S
            )
    except Exception as error:  # kombu wraps every transport's error differently
        raise unavailable(
            f"No task broker (Redis) answers, so {what} queued now would never start: "
            f"nothing was started. Try again once it is back. ({type(error).__name__})"
        ) from error


def recompute_expire_stale(*, workspace: Workspace | None = None) -> int:
    """Mark failed the runs never picked up, or running without progress, for too long.

    A queued run older than PRIMER_RECOMPUTE_QUEUED_TIMEOUT_S was never taken by a worker; a
    running one whose last progress (its start or a stored shard) is older than
    PRIMER_RECOMPUTE_STALLED_S lost its process. Return how many were marked.
    """
    now = timezone.now()
    runs = (
        RecomputeRun.objects.all_workspaces()
        if workspace is None
        else RecomputeRun.objects.for_workspace(workspace)
    )
    queued_before = now - timedelta(seconds=settings.PRIMER_RECOMPUTE_QUEUED_TIMEOUT_S)
    stalled_before = now - timedelta(seconds=settings.PRIMER_RECOMPUTE_STALLED_S)
    expired = 0
    for run_id in runs.filter(
        status=RecomputeRun.Status.QUEUED, created_at__lt=queued_before
    ).values_list("pk", flat=True):
        run_fail(
            run_id=run_id,
            error=f"Stale: no worker picked this run up within "
            f"{settings.PRIMER_RECOMPUTE_QUEUED_TIMEOUT_S} s (is a worker running?).",
        )
        expired += 1
    running = runs.filter(status=RecomputeRun.Status.RUNNING).annotate(
        last_shard=Max("shard_results__finished_at")
    )
    for run_id, *moments in running.values_list("pk", "created_at", "started_at", "last_shard"):
        if max(moment for moment in moments if moment is not None) < stalled_before:
            run_fail(
                run_id=run_id,
                error=f"Stale: no progress for {settings.PRIMER_RECOMPUTE_STALLED_S} s "
                "(its process died); recompute again.",
            )
            expired += 1
    return expired


def recompute_runner(
    *, plan: RecomputePlan, on_workers: bool, on_progress: Progress | None = None
) -> Runner:
    """Return the runner for a plan: the workers' chord, or a streamed or bucketed run here."""
    if on_workers:
        return ChordRunner()
    if plan.customer_ids is None and writeback.partitioned():
        return StreamedRunner(on_progress)
    return InProcessRunner(on_progress)


def recompute_on_schedule(*, workspace_id: int, incremental: bool) -> RecomputeAsked:
    """Start the debounced or periodic recompute of a workspace on the workers.

    When a run was already in progress the answer says so (`started` False): that run was
    planned before this request, so the caller asks again later.
    """
    cache.delete(pending_key(workspace_id))
    return recompute_ask(
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
    # Running from now, so the stale check counts its progress from the resume.
    runs.update(status=RecomputeRun.Status.RUNNING, error="", started_at=timezone.now())
    ChordRunner().dispatch(run_id=run_id)


def pending_key(workspace_id: int) -> str:
    return f"primer:recompute-pending:{workspace_id}"


def workspace_ids() -> list[int]:
    return list(Workspace.objects.order_by("pk").values_list("pk", flat=True))
