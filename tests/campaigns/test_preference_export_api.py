"""Preference exports over the API: a job with progress, its zip downloaded, its rules."""

import io
import json
import zipfile

import pytest

from campaigns.prompts.preference_jobs import preference_export_run
from memory.models import PreferenceExport
from tests.campaigns.preference_support import (
    expected_pair_count,
    import_starbucks,
    starbucks_slice,
)
from tests.memory.import_support import media_root  # noqa: F401

URL = "/api/v1/preference-exports"


def auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("media_root")
def test_it_runs_an_export_as_a_job_and_downloads_its_zip(
    client,
    workspace,
    write_key,
    read_key,
    tmp_path,
):
    records = starbucks_slice(tmp_path / "slice", profiles=200)
    import_starbucks(workspace, tmp_path / "slice")

    started = client.post(
        URL,
        {"format": "dpo", "max_pairs": 2, "meta": True},
        content_type="application/json",
        **auth(write_key),
    )

    assert started.status_code == 202, started.content
    assert started.json()["status"] == "queued"
    # What the worker does with it (the task is one call; tests/workers.py runs real ones).
    preference_export_run(job_id=started.json()["id"])
    job_url = started.headers["Location"]
    followed = client.get(job_url, **auth(read_key)).json()
    assert followed["status"] == "succeeded", followed
    assert followed["progress"] == 1.0
    assert followed["done"] == followed["total"] > 0
    pairs, _ = expected_pair_count(records, max_pairs=2)
    assert followed["counts"]["train_lines"] == pairs
    download = client.get(followed["download"], **auth(read_key))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    packed = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert sorted(packed.namelist()) == ["preferences-dpo.card.md", "preferences-dpo.jsonl"]
    lines = [json.loads(line) for line in packed.read("preferences-dpo.jsonl").splitlines()]
    assert len(lines) == pairs
    assert set(lines[0]) == {"prompt", "chosen", "rejected", "meta"}
    assert "## Leakage rule" in packed.read("preferences-dpo.card.md").decode()
    listed = client.get(URL, **auth(read_key)).json()["results"]
    assert [row["id"] for row in listed] == [followed["id"]]


@pytest.mark.django_db
def test_it_refuses_bad_options_naming_the_field(client, workspace, write_key):
    response = client.post(
        URL,
        {"format": "ppo", "max_pairs": 0, "holdout_percent": 150},
        content_type="application/json",
        **auth(write_key),
    )
    assert response.status_code == 400
    body = json.dumps(response.json())
    for field in ("format", "max_pairs", "holdout_percent"):
        assert field in body
    assert not PreferenceExport.objects.for_workspace(workspace).exists()


@pytest.mark.django_db
def test_it_needs_the_write_scope_to_start_and_hides_other_workspaces_exports(
    client, workspace, other_workspace, read_key
):
    refused = client.post(URL, {}, content_type="application/json", **auth(read_key))
    assert refused.status_code == 403
    theirs = PreferenceExport.objects.create(workspace=other_workspace, actor="someone")
    assert client.get(f"{URL}/{theirs.pk}", **auth(read_key)).status_code == 404
    assert client.get(f"{URL}/{theirs.pk}/download", **auth(read_key)).status_code == 404


@pytest.mark.django_db
def test_it_has_no_download_before_the_export_succeeded(client, workspace, read_key):
    queued = PreferenceExport.objects.create(workspace=workspace, actor="someone")
    assert client.get(f"{URL}/{queued.pk}", **auth(read_key)).json()["download"] is None
    assert client.get(f"{URL}/{queued.pk}/download", **auth(read_key)).status_code == 404


@pytest.mark.django_db
def test_a_viewer_cannot_start_an_export(viewer_client):
    assert viewer_client.post(URL, {}, content_type="application/json").status_code == 403
