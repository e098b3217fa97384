"""Run a recompute on the Celery workers: population, then the shards' chord, then the swap.

The tasks are defined in ``memory.tasks`` and named here, so this module composes them
without importing them (``memory.tasks`` imports this one).
"""

from __future__ import annotations

import logging
import time

from celery import chord, signature
from django.db import transaction

from config.allocator import heap_kept
from memory.models import RecomputeRun
from memory.recompute.inputs import engine_inputs
from memory.recompute.plan import RecomputePlan
from memory.recompute.steps import (
    population_from_sample,
    run_fail,
    run_finish,
    shard_compute,
    shard_indices_left,
    shard_store,
    shards_load,
)
from memory.scoring import sharded

logger = logging.getLogger(__name__)

POPULATION_TASK = "memory.recompute_population"
DISPATCH_TASK = "memory.recompute_dispatch"
SHARD_TASK = "memory.recompute_shard"
FINISH_TASK = "memory.recompute_finish"
FAILED_TASK = "memory.recompute_failed"
WORKSPACE_TASK = "memory.recompute_workspace"
ALL_WORKSPACES_TASK = "memory.recompute_all_workspaces"


class ChordRunner:
    """Queue the run on the workers once its row is committed; return it still queued."""

    def run(self, plan: RecomputePlan) -> RecomputeRun:
        run = _run(plan.run_id)  # read first: a worker may start it as soon as it is queued
        self.dispatch(run_id=plan.run_id)
        if not transaction.get_connection().in_atomic_block:
            # Queued already (autocommit runs on_commit at once): failed if no broker took it.
            run.status, run.error = (
                RecomputeRun.objects.all_workspaces()
                .filter(pk=run.pk)
                .values_list("status", "error")
                .get()
            )
        return run

    def dispatch(self, *, run_id: int) -> None:
        """Queue population, then the shards' chord, once the run's row is committed."""
        transaction.on_commit(lambda: _queue(run_id))


def _queue(run_id: int) -> None:
    try:
        (
            (_task(POPULATION_TASK, run_id) | _task(DISPATCH_TASK, run_id))
            .on_error(_errback(run_id))
            .delay()
        )
    except Exception as error:  # the broker went away after it was checked
        logger.warning("Recompute %s could not be queued: %s", run_id, error)
        run_fail(run_id=run_id, error=f"Could not be queued: no task broker answered ({error}).")


def shards_fan_out(*, run_id: int) -> None:
    """Queue the run's shards left as a chord whose callback swaps them in."""
    run = _run(run_id)
    if _given_up(run):
        return
    plan = RecomputePlan.of_run(run)
    chord(_task(SHARD_TASK, run_id, index) for index in shard_indices_left(plan=plan))(
        _task(FINISH_TASK, run_id).on_error(_errback(run_id))
    )


@heap_kept()
def population_on_worker(*, run_id: int) -> None:
    """Fit the population of a run and store it on the run (idempotent)."""
    run = _run(run_id)
    if run.population is not None or _given_up(run):
        return
    population_from_sample(plan=RecomputePlan.of_run(run).with_reusable_model())


@heap_kept()
def shard_on_worker(*, run_id: int, index: int) -> None:
    """Compute one bucket with the run's population and store its rows (idempotent)."""
    run = _run(run_id)
    if run.status == RecomputeRun.Status.SUCCEEDED or _given_up(run):
        return  # a late duplicate of a swapped-in shard, or of a superseded or stale run
    plan = RecomputePlan.of_run(run)
    started = time.perf_counter()
    inputs = engine_inputs(
        workspace=plan.workspace,
        as_of=plan.as_of,
        customers=plan.bucket(index),
        trait_keys=plan.trait_keys,
    )
    shard = shard_compute(plan=plan, population=_population(run), inputs=inputs)
    shard_store(plan=plan, index=index, shard=shard._replace(seconds=time.perf_counter() - started))


@heap_kept()
def finish_on_worker(*, run_id: int) -> RecomputeRun:
    """Swap the run's stored shards into the derived tables (idempotent)."""
    run = _run(run_id)
    if run.status == RecomputeRun.Status.SUCCEEDED or _given_up(run):
        return run
    plan = RecomputePlan.of_run(run)
    return run_finish(plan=plan, population=_population(run), shards=shards_load(plan=plan))


def _run(run_id: int) -> RecomputeRun:
    return RecomputeRun.objects.all_workspaces().select_related("workspace").get(pk=run_id)


def _given_up(run: RecomputeRun) -> bool:
    # Superseded or marked stale: a newer run may be on its way, so this one must not swap in.
    return run.status == RecomputeRun.Status.FAILED


def _population(run: RecomputeRun) -> sharded.Population:
    return sharded.Population.from_bytes(bytes(run.population))


def _task(name: str, *args):
    return signature(name, args=args, immutable=True)


def _errback(run_id: int):
    # Not immutable: Celery puts the failed request, the exception and traceback first.
    return signature(FAILED_TASK, args=(run_id,))
