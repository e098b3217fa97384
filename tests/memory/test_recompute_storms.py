"""Recompute storms and stale runs: one active run per workspace, stale ones expire, no broker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Membership
from campaigns.tenancy.services import api_key_create
from memory.models import RecomputeRun, RecomputeShard
from memory.recompute import chord
from memory.recompute.service import recompute_ask, recompute_expire_stale
from tests.memory.engine_fixtures import AS_OF, load_synthetic

pytestmark = pytest.mark.django_db

QUEUED, RUNNING, FAILED = (
    RecomputeRun.Status.QUEUED,
    RecomputeRun.Status.RUNNING,
    RecomputeRun.Status.FAILED,
)


@pytest.fixture
def on_workers(workspace, settings, django_capture_on_commit_callbacks):
    """Requests go to the workers; what would be queued after commit is only collected."""
    load_synthetic(workspace, customers=30, events=1_000)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=False) as queued:
        yield queued


def ask(workspace, *, incremental=False):
    return recompute_ask(
        workspace=workspace, as_of=AS_OF, incremental=incremental, requested_by="api"
    )


def active_runs(workspace):
    return list(RecomputeRun.objects.for_workspace(workspace).filter(status__in=[QUEUED, RUNNING]))


def test_it_answers_a_second_request_with_the_run_in_progress(workspace, on_workers):
    first = ask(workspace)
    second = ask(workspace)
    third = ask(workspace, incremental=True)
    assert first.started and not second.started and not third.started
    assert second.run.pk == first.run.pk == third.run.pk
    assert active_runs(workspace) == [first.run]


def test_a_full_request_supersedes_a_queued_incremental_run(workspace, on_workers):
    ask(workspace)  # a first full run, so that the next incremental one is incremental
    RecomputeRun.objects.for_workspace(workspace).update(
        status=RecomputeRun.Status.SUCCEEDED, started_at=timezone.now()
    )
    incremental = ask(workspace, incremental=True).run
    assert incremental.mode == RecomputeRun.Mode.INCREMENTAL
    full = ask(workspace)
    assert full.started and full.run.mode == RecomputeRun.Mode.FULL
    incremental.refresh_from_db()
    assert incremental.status == FAILED
    assert f"Superseded by full recompute {full.run.pk}" in incremental.error
    assert active_runs(workspace) == [full.run]


def test_a_full_request_while_an_incremental_one_runs_is_answered_with_it(workspace, on_workers):
    ask(workspace)
    RecomputeRun.objects.for_workspace(workspace).update(
        status=RecomputeRun.Status.SUCCEEDED, started_at=timezone.now()
    )
    incremental = ask(workspace, incremental=True).run
    RecomputeRun.objects.all_workspaces().filter(pk=incremental.pk).update(status=RUNNING)
    answer = ask(workspace)
    assert not answer.started and answer.run.pk == incremental.pk


def test_a_superseded_run_picked_up_late_does_nothing(workspace, on_workers):
    run = ask(workspace).run
    runs = RecomputeRun.objects.all_workspaces()
    runs.filter(pk=run.pk).update(status=FAILED, error="Superseded")
    chord.population_on_worker(run_id=run.pk)
    chord.shards_fan_out(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.population, run.started_at) == (FAILED, None, None)


def test_a_run_never_picked_up_is_marked_stale_and_a_new_one_starts(
    workspace, on_workers, settings
):
    settings.PRIMER_RECOMPUTE_QUEUED_TIMEOUT_S = 600
    lost = ask(workspace).run
    RecomputeRun.objects.all_workspaces().filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(seconds=601)
    )
    answer = ask(workspace)
    assert answer.started and answer.run.pk != lost.pk
    lost.refresh_from_db()
    assert lost.status == FAILED and lost.error.startswith("Stale: no worker picked")


def test_a_running_run_without_progress_is_marked_stale(workspace, on_workers, settings):
    settings.PRIMER_RECOMPUTE_STALLED_S = 900
    dead = ask(workspace).run
    long_ago = timezone.now() - timedelta(seconds=901)
    RecomputeRun.objects.all_workspaces().filter(pk=dead.pk).update(
        status=RUNNING, created_at=long_ago, started_at=long_ago
    )
    assert recompute_expire_stale() == 1
    dead.refresh_from_db()
    assert dead.status == FAILED and dead.error.startswith("Stale: no progress for 900 s")


def test_a_long_run_that_still_stores_shards_is_not_stale(workspace, on_workers, settings):
    settings.PRIMER_RECOMPUTE_STALLED_S = 900
    alive = ask(workspace).run
    long_ago = timezone.now() - timedelta(seconds=5_000)
    RecomputeRun.objects.all_workspaces().filter(pk=alive.pk).update(
        status=RUNNING, created_at=long_ago, started_at=long_ago
    )
    RecomputeShard.objects.create(run=alive, index=0, payload=b"", finished_at=timezone.now())
    assert recompute_expire_stale() == 0
    alive.refresh_from_db()
    assert alive.status == RUNNING


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_the_api_answers_an_extra_request_with_the_run_in_progress(
    client, workspace, write_key, on_workers
):
    first = client.post("/api/v1/recompute", {}, **bearer(write_key))
    second = client.post("/api/v1/recompute", {"incremental": True}, **bearer(write_key))
    assert first.status_code == second.status_code == 202
    assert first.json()["started"] is True and second.json()["started"] is False
    assert second.json()["id"] == first.json()["id"]


def test_the_api_recompute_needs_the_write_scope(client, workspace, read_key, on_workers):
    assert client.post("/api/v1/recompute", {}, **bearer(read_key)).status_code == 403
    assert active_runs(workspace) == []


def test_the_api_recompute_is_rate_limited_per_key(
    client, workspace, on_workers, settings, fresh_rate_counts
):
    settings.PRIMER_RECOMPUTE_RATE_LIMIT = 2
    settings.PRIMER_RECOMPUTE_RATE_WINDOW_S = 3600
    _, key = api_key_create(workspace=workspace, scopes=["write"], name="busy")
    _, other = api_key_create(workspace=workspace, scopes=["write"], name="calm")
    codes = [client.post("/api/v1/recompute", {}, **bearer(key)).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    refused = client.post("/api/v1/recompute", {}, **bearer(key))
    assert "Too many recompute requests: at most 2 per 3600 s" in refused.json()["detail"]
    assert int(refused["Retry-After"]) > 0
    assert client.post("/api/v1/recompute", {}, **bearer(other)).status_code == 202


def test_the_api_says_503_when_no_broker_answers(
    client, workspace, write_key, on_workers, closed_port_broker
):
    response = client.post("/api/v1/recompute", {}, **bearer(write_key))
    assert response.status_code == 503
    assert "No task broker (Redis) answers" in response.json()["detail"]
    assert response.json()["retryable"] is True
    assert RecomputeRun.objects.for_workspace(workspace).count() == 0


def test_the_page_says_so_when_no_broker_answers(
    client, make_user, workspace, on_workers, closed_port_broker
):
    client.force_login(make_user("ed", workspace=workspace, role=Membership.Role.EDITOR))
    response = client.post("/memory/recompute/", follow=True)
    assert "No task broker (Redis) answers" in response.content.decode()
    assert RecomputeRun.objects.for_workspace(workspace).count() == 0


def test_the_page_says_a_run_is_already_in_progress(client, make_user, workspace, on_workers):
    client.force_login(make_user("ed", workspace=workspace, role=Membership.Role.EDITOR))
    client.post("/memory/recompute/")
    response = client.post("/memory/recompute/", follow=True)
    run = RecomputeRun.objects.for_workspace(workspace).get()
    assert f"Recompute {run.pk} is already queued" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_broker_lost_after_the_check_answers_503_not_500(
    client, workspace, write_key, settings, monkeypatch
):
    from celery.canvas import _chain
    from kombu.exceptions import OperationalError

    def lost(self, *args, **kwargs):
        raise OperationalError("Connection refused")

    load_synthetic(workspace, customers=10, events=300)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr("memory.recompute.service.broker_check", lambda: None)
    monkeypatch.setattr(_chain, "apply_async", lost)
    response = client.post("/api/v1/recompute", {}, **bearer(write_key))
    assert response.status_code == 503
    assert "no task broker answered" in response.json()["detail"]
    (run,) = RecomputeRun.objects.for_workspace(workspace)
    assert run.status == FAILED  # not left queued forever
