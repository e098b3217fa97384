"""Faults beside ingestion: Redis gone, the database connection lost. Nothing stored is lost."""

import json
import logging
from contextlib import contextmanager

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from kombu.exceptions import OperationalError as BrokerError

from memory import tasks
from memory.ingest.outbox import recompute_outbox_drain
from memory.models import Event, RecomputeOutbox
from memory.recompute.service import pending_key
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = pytest.mark.django_db

# Nothing listens on port 1: every cache call fails at once with "connection refused".
REDIS_GONE = override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    },
    CELERY_TASK_ALWAYS_EAGER=False,
)


def batch(*message_ids: str) -> str:
    return json.dumps(
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": m}
                for m in message_ids
            ]
        }
    )


@pytest.fixture
def send_batch(client, write_auth):
    """POST a /v1/batch of track events with these message ids, authenticated."""

    def send(*message_ids: str):
        return client.post(
            "/v1/batch",
            data=batch(*message_ids),
            content_type="application/json",
            HTTP_AUTHORIZATION=write_auth,
        )

    return send


@pytest.fixture
def committing(django_capture_on_commit_callbacks):
    """Run on-commit callbacks as a real commit would, with a broker configured."""

    @contextmanager
    def run():
        with (
            override_settings(CELERY_TASK_ALWAYS_EAGER=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            yield

    return run


@pytest.fixture
def queued(monkeypatch):
    """The workspaces whose recompute was handed to the broker (kept off the real queue)."""
    sent: list[int] = []
    monkeypatch.setattr(
        tasks.recompute_workspace,
        "apply_async",
        lambda args=(), kwargs=None, **options: sent.append(args[0]),
    )
    return sent


@pytest.fixture
def broker_gone(monkeypatch):
    def refuse(*args, **options):
        raise BrokerError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(tasks.recompute_workspace, "apply_async", refuse)


def test_it_stores_events_and_answers_200_when_redis_is_unreachable(send_batch, workspace, caplog):
    with REDIS_GONE, caplog.at_level(logging.WARNING, logger="primer.cache"):
        response = send_batch("m-1", "m-2")
    assert response.status_code == 200, response.content
    assert Event.objects.for_workspace(workspace).count() == 2
    # The debounced recompute went to the outbox, committed with the events.
    assert RecomputeOutbox.objects.filter(workspace=workspace).count() == 1
    assert "Cache (Redis) unavailable" in caplog.text


@override_settings(PRIMER_INGEST_RATE_LIMIT=2)
def test_it_still_rate_limits_per_process_when_redis_is_unreachable(client, write_auth, workspace):
    with REDIS_GONE:
        answers = [
            client.post(
                "/v1/batch",
                data=batch(f"m-{i}"),
                content_type="application/json",
                HTTP_AUTHORIZATION=write_auth,
            )
            for i in range(3)
        ]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert answers[2].status_code == 429 and int(answers[2]["Retry-After"]) >= 1


def test_it_queues_what_the_outbox_holds_and_empties_it(workspace, other_workspace, queued):
    RecomputeOutbox.objects.create(workspace=workspace)
    RecomputeOutbox.objects.create(workspace=other_workspace)
    tasks.recompute_outbox_drain()  # what the beat runs every minute
    assert sorted(queued) == sorted([workspace.pk, other_workspace.pk])
    assert not RecomputeOutbox.objects.exists()


def test_it_keeps_the_outbox_while_the_broker_does_not_answer(workspace, broker_gone):
    RecomputeOutbox.objects.create(workspace=workspace)
    assert recompute_outbox_drain() == 0
    assert RecomputeOutbox.objects.filter(workspace=workspace).exists()


def test_it_drains_the_outbox_on_the_next_successful_enqueue(
    send_batch, workspace, other_workspace, queued, committing
):
    cache.delete(pending_key(workspace.pk))
    RecomputeOutbox.objects.create(workspace=other_workspace)
    with committing():
        response = send_batch("m-1")
    cache.delete(pending_key(workspace.pk))
    assert response.status_code == 200
    assert sorted(queued) == sorted([workspace.pk, other_workspace.pk])
    assert not RecomputeOutbox.objects.exists()


def test_it_records_the_recompute_when_only_the_broker_is_gone(
    send_batch, workspace, broker_gone, committing
):
    cache.delete(pending_key(workspace.pk))
    with committing():
        response = send_batch("m-1")
    assert response.status_code == 200
    assert Event.objects.for_workspace(workspace).count() == 1
    assert RecomputeOutbox.objects.filter(workspace=workspace).exists()
    assert cache.get(pending_key(workspace.pk)) is None  # the next ingest tries again


def test_it_shows_the_memory_page_from_the_database_when_redis_is_unreachable(
    member_client, workspace
):
    load_synthetic(workspace, customers=20, events=1_500)
    recompute_here(workspace=workspace, as_of=AS_OF)
    with REDIS_GONE:
        response = member_client.get("/memory/")
    assert response.status_code == 200
    assert response.context["glance"]["with_memory"] == 20


def _events(count: int) -> list[dict]:
    return [
        {"userId": f"u{i % 7}", "event": "Order Completed", "messageId": f"lost-{i}"}
        for i in range(count)
    ]


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_when_the_database_connection_drops_mid_copy_and_a_retry_stores_once(
    client, write_auth, workspace, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("COPY and pg_terminate_backend are PostgreSQL's")
    monkeypatch.setattr("memory.services.recompute_request", lambda *, workspace_id: None)
    params = connection.settings_dict
    write_row = psycopg.Copy.write_row
    terminated: list[int] = []

    def write_row_then_lose_the_connection(copy, row):
        if not terminated:
            pid = copy.cursor.connection.info.backend_pid
            with psycopg.connect(
                dbname=params["NAME"],
                host=params["HOST"] or None,
                port=params["PORT"] or None,
                user=params["USER"] or None,
                password=params["PASSWORD"] or None,
                autocommit=True,
            ) as other:
                # Waits (up to 5 s) until the backend is gone: no sleep needed.
                other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            terminated.append(pid)
        return write_row(copy, row)

    body = json.dumps(_events(300))
    send = lambda: client.post(  # noqa: E731
        "/api/v1/events", data=body, content_type="application/json", HTTP_AUTHORIZATION=write_auth
    )
    with monkeypatch.context() as patched:
        patched.setattr(psycopg.Copy, "write_row", write_row_then_lose_the_connection)
        lost = send()
    assert terminated, "the COPY never ran"
    assert lost.status_code == 503, lost.content
    assert lost["Retry-After"] == "1"
    assert lost.json()["retryable"] is True
    assert Event.objects.for_workspace(workspace).count() == 0

    retried = send()
    assert retried.status_code == 200
    assert retried.json()["stored"] == 300
    again = send()
    assert again.json()["duplicates"] == 300
    assert Event.objects.for_workspace(workspace).count() == 300
    assert (
        len(set(Event.objects.for_workspace(workspace).values_list("dedup_key", flat=True))) == 300
    )
