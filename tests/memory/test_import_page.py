"""The import page: upload, run in-process, report by line; bad files refused; roles; progress."""

from pathlib import Path
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Membership, Message
from memory import imports
from memory.importers.lines import jsonl_lines
from memory.models import Customer, Event, EventImport
from memory.services import events_import
from tests.memory.import_support import (
    CSV_MAPPING,
    CSV_TEXT,
    SEGMENT_LINES,
    SEGMENT_STORED,
    compressed,
    only_import,
    segment_bytes,
    starbucks_uploads,
    stored_files,
    upload,
)

pytestmark = pytest.mark.django_db


def post_import(client, run_on_commit, files, **fields):
    return run_on_commit(client.post, reverse("imports"), {"files": files, **fields})


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz", "events.xz"])
def test_it_imports_an_uploaded_file_and_reports_each_bad_line_by_number(
    member_client, workspace, media_root, run_on_commit, name
):
    content = segment_bytes()
    file = upload(name, content) if name == "events.jsonl" else compressed(name, content)

    response = post_import(member_client, run_on_commit, [file])

    job = only_import(workspace)
    assert response.status_code == 302
    assert response["Location"] == reverse("import-detail", args=[job.pk])
    assert (job.status, job.format, job.stored, job.rejected) == ("succeeded", "jsonl", 4, 2)
    assert job.actor == "marketer" and job.file_name == name
    assert Event.objects.for_workspace(workspace).count() == SEGMENT_STORED
    assert [(bad["line"], bad["field"], bad["reason"][:14]) for bad in job.errors] == [
        (4, "", "malformed JSON"),
        (5, "userId", "userId or anon"),
    ]
    page = member_client.get(response["Location"]).content.decode()
    assert "malformed JSON" in page and '<td class="num">4</td>' in page
    assert "events stored" in page and "identical lines kept apart" in page
    listing = member_client.get(reverse("imports")).content.decode()
    assert name in listing and "line 4: malformed JSON" in listing and "marketer" in listing
    # Imported: the upload itself is not kept.
    assert stored_files(media_root) == []


def test_it_imports_a_csv_with_its_column_mapping(
    member_client, workspace, media_root, run_on_commit
):
    post_import(
        member_client,
        run_on_commit,
        [compressed("orders.csv.gz", CSV_TEXT.encode())],
        **CSV_MAPPING,
    )

    job = only_import(workspace)
    assert (job.status, job.format, job.stored) == ("succeeded", "csv", 3)
    assert [(bad["line"], bad["field"]) for bad in job.errors] == [(4, "at")]
    bought = Event.objects.for_workspace(workspace).get(dedup_key="o-2")
    assert (bought.name, bought.properties) == ("Bought", {"amount": 12.5})


def test_it_recognises_the_three_starbucks_files_and_imports_them_together(
    member_client, workspace, media_root, run_on_commit
):
    post_import(member_client, run_on_commit, starbucks_uploads(profiles=40, records=300))

    job = only_import(workspace)
    assert (job.status, job.format) == ("succeeded", "starbucks")
    assert job.file_name == "portfolio.json, profile.json, transcript.json"
    assert job.summary["lines"] == 340 and job.summary["identified"] == 40
    assert job.stored == Event.objects.for_workspace(workspace).count() > 250
    assert Message.objects.for_workspace(workspace).count() == 10
    assert Customer.objects.for_workspace(workspace).count() == job.summary["customers"]


@pytest.mark.parametrize(
    ("files", "fields", "reason"),
    [
        ([upload("events.jsonl.gz", segment_bytes())], {}, "is named .gz but is not gzip"),
        ([upload("empty.jsonl", b"")], {}, "The submitted file is empty"),
        ([upload("photo.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00")], {}, "is not a text file"),
        ([upload("events.jsonl", b"[1, 2]\n")], {}, "Line 1 of events.jsonl is not a JSON object"),
        ([upload("orders.csv", CSV_TEXT.encode())], {"user_id": "customer"}, "customer"),
        (starbucks_uploads()[:2], {"format": "starbucks"}, "The Starbucks data is three files"),
    ],
)
def test_it_refuses_a_bad_file_with_the_reason_and_stores_nothing(
    member_client, workspace, media_root, run_on_commit, files, fields, reason
):
    response = post_import(member_client, run_on_commit, files, **fields)

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not EventImport.objects.for_workspace(workspace).exists()
    assert stored_files(media_root) == []


def test_it_refuses_a_file_over_the_size_limit(
    member_client, workspace, media_root, run_on_commit, settings
):
    settings.PRIMER_IMPORT_MAX_MB = 1
    big = segment_bytes(SEGMENT_LINES * 20_000)

    response = post_import(member_client, run_on_commit, [upload("big.jsonl", big)])

    assert response.status_code == 400
    assert "the limit is 1 MB" in response.content.decode()
    assert not EventImport.objects.for_workspace(workspace).exists()


def test_it_fails_a_file_that_breaks_off_and_offers_to_run_it_again(
    member_client, workspace, media_root, run_on_commit
):
    whole = compressed("events.jsonl.gz", segment_bytes(SEGMENT_LINES * 2_000)).read()
    broken = upload("events.jsonl.gz", whole[: len(whole) // 2])

    post_import(member_client, run_on_commit, [broken])

    job = only_import(workspace)
    assert job.status == "failed"
    assert "could not be read to the end" in job.error
    assert "importing the file again once repaired adds only what is missing" in job.error
    page = member_client.get(reverse("import-detail", args=[job.pk])).content.decode()
    assert "Run it again" in page and "could not be read to the end" in page


def test_it_shows_viewers_the_imports_but_refuses_their_upload(
    client, make_user, workspace, media_root, run_on_commit
):
    viewer = make_user("reader", workspace=workspace, role=Membership.Role.VIEWER)
    client.force_login(viewer)

    page = client.get(reverse("imports"))
    refused = post_import(client, run_on_commit, [upload("events.jsonl", segment_bytes())])

    assert page.status_code == 200 and 'enctype="multipart/form-data"' not in page.content.decode()
    assert refused.status_code == 403
    assert not EventImport.objects.for_workspace(workspace).exists()


def test_it_reports_progress_on_the_status_endpoint_while_it_runs(
    member_client, workspace, media_root, run_on_commit, settings, monkeypatch
):
    settings.PRIMER_IMPORT_CHUNK_SIZE = 2
    monkeypatch.setattr(imports, "PROGRESS_INTERVAL_S", 0.0)
    seen = []
    write_progress = imports.event_import_progress

    def progress_then_poll(*, job_id, summary):
        write_progress(job_id=job_id, summary=summary)
        seen.append(member_client.get(reverse("import-status", args=[job_id])).json())

    with mock.patch.object(imports, "event_import_progress", progress_then_poll):
        post_import(member_client, run_on_commit, [upload("events.jsonl", segment_bytes())])

    assert {status["status"] for status in seen} == {"running"}
    assert {status["lines_total"] for status in seen} == {len(SEGMENT_LINES)}
    done = [status["lines_done"] for status in seen]
    assert done == sorted(done) and 0 < done[0] < done[-1] <= len(SEGMENT_LINES)
    assert 0 < seen[0]["progress"] < 1
    job = only_import(workspace)
    final = member_client.get(reverse("import-status", args=[job.pk])).json()
    assert final | {"id": 0} == {
        "id": 0,
        "status": "succeeded",
        "lines_done": len(SEGMENT_LINES),
        "lines_total": len(SEGMENT_LINES),
        "progress": 1.0,
        "stored": SEGMENT_STORED,
        "rejected": 2,
        "error": "",
    }


def test_it_runs_a_lost_import_again_without_storing_anything_twice(
    member_client, workspace, media_root, run_on_commit, settings
):
    settings.PRIMER_IMPORT_STALLED_S = 0
    with mock.patch("memory.tasks.event_import.delay_on_commit"):  # a worker that never ran it
        member_client.post(reverse("imports"), {"files": [upload("e.jsonl", segment_bytes())]})
    job = only_import(workspace)
    # The lost worker had stored the first events before it died.
    EventImport.objects.for_workspace(workspace).filter(pk=job.pk).update(status="running")
    events_import(
        workspace=workspace, lines=list(jsonl_lines(Path(job.events_file.path)))[:2], source="e"
    )

    response = run_on_commit(member_client.post, reverse("import-run-again", args=[job.pk]))

    job.refresh_from_db()
    assert response.status_code == 302
    assert (job.status, job.attempts, job.stored) == ("succeeded", 1, SEGMENT_STORED - 1)
    assert job.summary["duplicates"] == 1
    assert Event.objects.for_workspace(workspace).count() == SEGMENT_STORED


def test_it_never_shows_another_workspaces_import(
    member_client, other_workspace, make_user, media_root, run_on_commit
):
    stranger = Client()
    stranger.force_login(make_user("stranger", workspace=other_workspace))
    post_import(stranger, run_on_commit, [upload("theirs.jsonl", segment_bytes())])
    theirs = only_import(other_workspace)

    assert member_client.get(reverse("import-detail", args=[theirs.pk])).status_code == 404
    assert member_client.get(reverse("import-status", args=[theirs.pk])).status_code == 404
    assert "theirs.jsonl" not in member_client.get(reverse("imports")).content.decode()
    again = member_client.post(reverse("import-run-again", args=[theirs.pk]))
    assert again.status_code == 404
