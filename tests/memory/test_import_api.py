"""POST /api/v1/imports (multipart) and GET /api/v1/imports/{id}: scopes, errors, workspaces."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from campaigns.models import Membership
from campaigns.tenancy.services import api_key_create
from memory.models import Event, EventImport
from tests.memory.import_support import (
    CSV_MAPPING,
    CSV_TEXT,
    SEGMENT_STORED,
    compressed,
    only_import,
    segment_bytes,
    stored_files,
    upload,
)

pytestmark = pytest.mark.django_db


def bearer(raw_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def start(client, run_on_commit, raw_key: str, files, **fields):
    return run_on_commit(
        client.post, "/api/v1/imports", {"files": files, **fields}, **bearer(raw_key)
    )


def test_it_starts_an_import_and_answers_where_to_follow_it(
    client, workspace, write_key, media_root, run_on_commit
):
    response = start(client, run_on_commit, write_key, [upload("e.jsonl", segment_bytes())])

    job = only_import(workspace)
    assert response.status_code == 202
    assert response["Location"] == f"/api/v1/imports/{job.pk}"
    assert job.actor == "API key writer (" + job.api_key.prefix + "…)"
    followed = client.get(response["Location"], **bearer(write_key)).json()
    assert followed["status"] == "succeeded" and followed["progress"] == 1.0
    assert followed["stored"] == SEGMENT_STORED and followed["rejected"] == 2
    assert followed["summary"]["duplicates"] == 0 and followed["summary"]["blank"] == 1
    assert [(bad["line"], bad["field"]) for bad in followed["errors"]] == [(4, ""), (5, "userId")]
    assert Event.objects.for_workspace(workspace).count() == SEGMENT_STORED


def test_it_maps_a_csv_from_the_form_fields(
    client, workspace, write_key, media_root, run_on_commit
):
    files = [compressed("orders.csv.xz", CSV_TEXT.encode())]
    response = start(client, run_on_commit, write_key, files, **CSV_MAPPING)

    assert response.status_code == 202
    followed = client.get(response["Location"], **bearer(write_key)).json()
    assert (followed["format"], followed["status"], followed["stored"]) == ("csv", "succeeded", 3)


@pytest.mark.parametrize(
    ("files", "fields", "field", "reason"),
    [
        ([upload("e.jsonl.xz", segment_bytes())], {}, "files", "is not xz-compressed"),
        ([upload("o.csv", CSV_TEXT.encode())], {"user_id": "who"}, "csv", "columns not in"),
        ([upload("o.csv", CSV_TEXT.encode())], {"delimiter": ";;"}, "delimiter", "one character"),
        ([upload("e.jsonl", segment_bytes())], {"format": "xml"}, "format", "not a valid choice"),
        ([], {}, "files", "required"),
    ],
)
def test_it_refuses_a_bad_upload_naming_the_field(
    client, workspace, write_key, media_root, run_on_commit, files, fields, field, reason
):
    response = start(client, run_on_commit, write_key, files, **fields)

    assert response.status_code == 400
    assert reason in " ".join(map(str, response.json()[field]))
    assert not EventImport.objects.for_workspace(workspace).exists()
    assert stored_files(media_root) == []


def test_it_needs_the_write_scope_to_start_and_read_or_write_to_follow(
    client, workspace, write_key, read_key, media_root, run_on_commit
):
    refused = start(client, run_on_commit, read_key, [upload("e.jsonl", segment_bytes())])
    start(client, run_on_commit, write_key, [upload("e.jsonl", segment_bytes())])
    job = only_import(workspace)

    assert refused.status_code == 403
    for raw_key in (read_key, write_key):
        assert client.get(f"/api/v1/imports/{job.pk}", **bearer(raw_key)).status_code == 200
    listed = client.get("/api/v1/imports?status=succeeded", **bearer(read_key)).json()
    assert [row["id"] for row in listed["results"]] == [job.pk]
    assert client.get("/api/v1/imports?status=failed", **bearer(read_key)).json()["results"] == []


def test_it_lets_a_signed_in_viewer_follow_imports_but_not_start_one(
    client, make_user, workspace, media_root, run_on_commit
):
    client.force_login(make_user("reader", workspace=workspace, role=Membership.Role.VIEWER))

    refused = run_on_commit(
        client.post, "/api/v1/imports", {"files": [upload("e.jsonl", segment_bytes())]}
    )

    assert refused.status_code == 403
    assert client.get("/api/v1/imports").json()["results"] == []


def test_it_answers_404_for_another_workspaces_import(
    client, workspace, other_workspace, read_key, media_root, run_on_commit
):
    _, theirs = api_key_create(workspace=other_workspace, scopes=["write"], name="theirs")
    start(client, run_on_commit, theirs, [upload("e.jsonl", segment_bytes())])
    job = only_import(other_workspace)

    assert client.get(f"/api/v1/imports/{job.pk}", **bearer(read_key)).status_code == 404
    assert client.get("/api/v1/imports", **bearer(read_key)).json()["results"] == []


def test_it_refuses_to_run_a_finished_import_again(
    client, workspace, write_key, media_root, run_on_commit
):
    start(client, run_on_commit, write_key, [upload("e.jsonl", segment_bytes())])
    job = only_import(workspace)

    again = run_on_commit(client.post, f"/api/v1/imports/{job.pk}/run-again", **bearer(write_key))

    assert again.status_code == 400
    assert "is succeeded" in again.json()["status"][0]


def test_it_lists_the_import_operations_in_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]

    assert set(paths["/api/v1/imports"]) == {"get", "post"}
    assert set(paths["/api/v1/imports/{id}"]) == {"get"}
    assert "multipart/form-data" in paths["/api/v1/imports"]["post"]["requestBody"]["content"]
    upload_part = schema["components"]["schemas"]["EventImportCreate"]["properties"]["files"]
    assert upload_part["items"]["format"] == "binary"
