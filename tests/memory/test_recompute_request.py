"""One service decides where a recompute runs, and tells other apps when its memory is in."""

import pytest

from memory.models import RecomputeRun
from memory.recompute.service import recompute_request
from memory.signals import memory_recomputed
from tests.memory.engine_fixtures import AS_OF, load_synthetic

pytestmark = pytest.mark.django_db


@pytest.fixture
def synthetic(workspace):
    return load_synthetic(workspace, customers=60, events=4_000)


def test_it_runs_here_when_no_worker_would_take_it(workspace, synthetic, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    run = recompute_request(workspace=workspace, as_of=AS_OF, requested_by="page")
    assert run.status == RecomputeRun.Status.SUCCEEDED
    assert run.stats["requested_by"] == "page"


def test_it_queues_on_the_workers_when_there_is_a_broker(
    workspace, synthetic, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run = recompute_request(workspace=workspace, as_of=AS_OF, requested_by="api")
    assert run.status == RecomputeRun.Status.QUEUED
    assert len(queued) == 1  # the population task, then the shards' chord, after commit


def test_the_command_line_may_run_here_even_with_a_broker(workspace, synthetic, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    run = recompute_request(
        workspace=workspace, as_of=AS_OF, requested_by="command", on_workers=False
    )
    assert run.status == RecomputeRun.Status.SUCCEEDED


def test_it_signals_the_new_memory_once_committed(
    workspace, synthetic, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    memory_recomputed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            run = recompute_request(workspace=workspace, as_of=AS_OF, requested_by="page")
        assert received == []  # nothing before the commit
        for callback in callbacks:
            callback()
    finally:
        memory_recomputed.disconnect(receiver)
    assert {"workspace_id": workspace.pk, "run_id": run.pk}.items() <= received[0].items()


def test_a_failed_run_sends_no_signal(workspace, synthetic, settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    def explode(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("memory.db.writeback.swap", explode)
    memory_recomputed.connect(receiver)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            recompute_request(workspace=workspace, as_of=AS_OF, requested_by="page")
    finally:
        memory_recomputed.disconnect(receiver)
    assert received == []
