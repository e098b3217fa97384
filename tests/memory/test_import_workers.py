"""Imports on real Celery worker processes on Redis: from the page, and after a killed worker."""

import json
import time

import pytest
from django.urls import reverse

from memory.models import Event, EventImport
from tests.memory.import_support import SEGMENT_STORED, only_import, segment_bytes, upload

pytestmark = pytest.mark.worker

BIG = 50_000


def wait_for(job: EventImport, condition, timeout: float = 180.0) -> EventImport:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if condition(job):
            return job
        if job.status == EventImport.Status.FAILED:
            pytest.fail(f"import failed: {job.error}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting on import {job.pk}: {job.status}, {job.lines_done} lines")


def succeeded(job: EventImport) -> bool:
    return job.status == EventImport.Status.SUCCEEDED


def big_file() -> bytes:
    return b"".join(
        json.dumps(
            {
                "type": "track",
                "userId": f"c{n % 2_000}",
                "event": "Tap",
                "timestamp": "2025-06-01T10:00:00Z",
                "messageId": f"tap-{n}",
            }
        ).encode()
        + b"\n"
        for n in range(BIG)
    )


def test_it_runs_an_upload_from_the_page_on_a_worker(
    member_client, workspace, celery_workers, media_root
):
    celery_workers.start(PRIMER_MEDIA_ROOT=str(media_root))

    response = member_client.post(
        reverse("imports"), {"files": [upload("events.jsonl", segment_bytes())]}
    )

    job = wait_for(only_import(workspace), succeeded)
    assert response["Location"] == reverse("import-detail", args=[job.pk])
    status = member_client.get(reverse("import-status", args=[job.pk])).json()
    assert (status["status"], status["progress"], status["stored"]) == ("succeeded", 1.0, 4)
    assert Event.objects.for_workspace(workspace).count() == SEGMENT_STORED
    assert job.attempts == 1 and not job.events_file


def test_it_finishes_an_import_run_again_after_its_worker_was_killed(
    client, workspace, write_key, celery_workers, media_root, settings
):
    env = {"PRIMER_MEDIA_ROOT": str(media_root), "PRIMER_IMPORT_CHUNK_SIZE": "250"}
    doomed = celery_workers.start(**env)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {write_key}"}
    started = client.post("/api/v1/imports", {"files": [upload("big.jsonl", big_file())]}, **auth)
    assert started.status_code == 202

    job = wait_for(only_import(workspace), lambda j: j.status == "running" and j.lines_done > 0)
    celery_workers.kill(doomed)
    job.refresh_from_db()
    stored_before = Event.objects.for_workspace(workspace).count()
    assert job.status == EventImport.Status.RUNNING
    assert stored_before < BIG and job.lines_total == BIG

    settings.PRIMER_IMPORT_STALLED_S = 0  # no need to wait: the test knows the worker is gone
    celery_workers.start(**env)
    again = client.post(f"/api/v1/imports/{job.pk}/run-again", **auth)
    assert again.status_code == 202

    job = wait_for(job, succeeded)
    assert Event.objects.for_workspace(workspace).count() == BIG
    assert job.attempts == 2 and job.summary["lines"] == BIG
    assert job.summary["duplicates"] == stored_before
    assert job.stored == BIG - stored_before
    status = client.get(f"/api/v1/imports/{job.pk}", **auth).json()
    assert (status["status"], status["progress"]) == ("succeeded", 1.0)
