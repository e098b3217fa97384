"""Sharded recompute on real Celery worker processes on Redis, including a killed worker."""

import time

import pytest
from django.db import transaction

from memory.models import RecomputeRun
from memory.recompute.service import recompute_request, recompute_resume
from tests.memory.engine_fixtures import AS_OF, derived_rows, load_synthetic, recompute_here

pytestmark = pytest.mark.worker


def wait_for(run: RecomputeRun, condition, timeout: float = 120.0) -> RecomputeRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if condition(run):
            return run
        if run.status == RecomputeRun.Status.FAILED:
            pytest.fail(f"recompute failed: {run.error}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting on run {run.pk}: {run.status}, {run.shards_done} shards")


def finished(run: RecomputeRun) -> bool:
    return run.status == RecomputeRun.Status.SUCCEEDED


@pytest.fixture
def uninterrupted(workspace, settings):
    """The rows an in-process run gives; the workers must give the very same."""
    load_synthetic(workspace)
    settings.PRIMER_RECOMPUTE_CUSTOMERS_PER_SHARD = 24
    recompute_here(workspace=workspace, as_of=AS_OF)
    return derived_rows(workspace)


def test_it_runs_a_sharded_recompute_on_two_workers(workspace, celery_workers, uninterrupted):
    for _ in range(2):
        celery_workers.start(PRIMER_RECOMPUTE_CUSTOMERS_PER_SHARD="24")
    run = recompute_request(
        workspace=workspace, as_of=AS_OF, requested_by="command", on_workers=True
    )
    assert run.shards_total == 10
    run = wait_for(run, finished)
    assert run.shards_done == 10
    assert derived_rows(workspace) == uninterrupted


def test_it_finishes_the_same_after_a_worker_is_killed_mid_recompute(
    workspace, celery_workers, uninterrupted
):
    env = {"PRIMER_RECOMPUTE_CUSTOMERS_PER_SHARD": "24"}
    doomed = celery_workers.start(**env)
    run = recompute_request(
        workspace=workspace, as_of=AS_OF, requested_by="command", on_workers=True
    )
    # Kill it mid-run for sure: with the run's row locked, a shard cannot count itself done, so
    # the worker (one task at a time) cannot reach the end between the check and the kill.
    deadline = time.monotonic() + 120
    while True:
        with transaction.atomic():
            locked = (
                RecomputeRun.objects.for_workspace(workspace).select_for_update().get(pk=run.pk)
            )
            if locked.shards_done >= 2:
                assert locked.status == RecomputeRun.Status.RUNNING
                celery_workers.kill(doomed)
                break
        assert time.monotonic() < deadline, "the worker stored no two shards"
        time.sleep(0.05)
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.RUNNING
    assert run.shards_done < run.shards_total
    # Nothing was swapped in: readers still see the previous (identical) memory, whole.
    assert derived_rows(workspace) == uninterrupted

    celery_workers.start(**env)
    recompute_resume(run_id=run.pk)
    run = wait_for(run, finished)
    assert derived_rows(workspace) == uninterrupted
