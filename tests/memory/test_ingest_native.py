"""The native endpoint /api/v1/events: per-index answers, token auth, workspace isolation."""

import pytest

from campaigns.tenancy.services import api_key_create
from memory.models import Event
from memory.services import events_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer(write_key):
    return f"Bearer {write_key}"


def test_it_answers_per_index_what_was_stored_and_why_not(post_json, bearer, workspace):
    body = [
        {"userId": "u1", "event": "Order Completed", "messageId": "m-1"},
        {"userId": "u1", "event": "Order Completed", "messageId": "m-1"},
        {"event": "Order Completed"},
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
        {"userId": "u2", "event": "A", "timestamp": "yesterday"},
        {"userId": "u2", "event": "A", "properties": ["not", "an", "object"]},
    ]

    response = post_json("/api/v1/events", body, auth=bearer)

    assert response.status_code == 200
    answer = response.json()
    assert (answer["received"], answer["stored"], answer["duplicates"]) == (6, 1, 1)
    assert (answer["identified"], answer["rejected"]) == (1, 3)
    assert answer["results"] == [
        {"index": 0, "status": "stored"},
        {"index": 1, "status": "duplicate"},
        {
            "index": 2,
            "status": "rejected",
            "field": "userId",
            "reason": "userId or anonymousId is required",
        },
        {"index": 3, "status": "identified"},
        {
            "index": 4,
            "status": "rejected",
            "field": "timestamp",
            "reason": "'yesterday' is not an ISO 8601 time",
        },
        {
            "index": 5,
            "status": "rejected",
            "field": "properties",
            "reason": "Expected a JSON object, got an array",
        },
    ]


def test_it_accepts_a_single_object(post_json, bearer, workspace):
    response = post_json("/api/v1/events", {"userId": "u1", "event": "A"}, auth=bearer)

    assert response.json()["results"] == [{"index": 0, "status": "stored"}]


def test_it_answers_duplicate_for_a_retry(post_json, bearer, workspace):
    event = {"userId": "u1", "event": "A", "messageId": "retry-me"}

    post_json("/api/v1/events", [event], auth=bearer)
    again = post_json("/api/v1/events", [event], auth=bearer)

    assert again.status_code == 200
    assert again.json()["results"] == [{"index": 0, "status": "duplicate"}]
    assert Event.objects.for_workspace(workspace).count() == 1


def test_it_rejects_an_oversize_event_by_index(post_json, bearer, workspace):
    body = [
        {"userId": "u1", "event": "A", "properties": {"blob": "x" * 33_000}},
        {"userId": "u1", "event": "B"},
    ]

    answer = post_json("/api/v1/events", body, auth=bearer).json()

    assert answer["results"][0]["status"] == "rejected"
    assert "32 KB" in answer["results"][0]["reason"]
    assert answer["results"][1]["status"] == "stored"


def test_it_answers_400_for_malformed_json(post_json, bearer):
    response = post_json("/api/v1/events", b"[{]", auth=bearer)

    assert response.status_code == 400
    assert "malformed JSON" in response.json()["error"]


def test_it_answers_400_past_2500_events(post_json, bearer):
    response = post_json("/api/v1/events", [{"userId": "u", "event": "A"}] * 2_501, auth=bearer)

    assert response.status_code == 400
    assert response.json()["limit"] == "batch_length"


@pytest.mark.parametrize("auth", [None, "Bearer pk_00000000_wrong", "Token nope"])
def test_it_answers_401_without_a_valid_key(post_json, workspace, auth):
    response = post_json("/api/v1/events", [{"userId": "u1", "event": "A"}], auth=auth)

    assert response.status_code == 401
    assert not Event.objects.for_workspace(workspace).exists()


def test_it_lists_events_for_a_read_key(client, read_key, workspace):
    events_ingest(
        workspace=workspace,
        payloads=[{"type": "track", "userId": f"u{i}", "event": "A"} for i in range(3)],
    )

    response = client.get("/api/v1/events", HTTP_AUTHORIZATION=f"Bearer {read_key}")

    assert response.status_code == 200
    assert sorted(e["customer"] for e in response.json()["results"]) == ["u0", "u1", "u2"]


def test_it_filters_the_list_by_customer(client, read_key, workspace):
    events_ingest(
        workspace=workspace,
        payloads=[{"type": "track", "userId": f"u{i}", "event": "A"} for i in range(3)],
    )

    response = client.get("/api/v1/events?customer=u1", HTTP_AUTHORIZATION=f"Bearer {read_key}")

    assert [e["customer"] for e in response.json()["results"]] == ["u1"]


def test_it_keeps_scopes_apart(client, post_json, read_key, write_key):
    write_with_read = post_json(
        "/api/v1/events", [{"userId": "u1", "event": "A"}], auth=f"Bearer {read_key}"
    )
    read_with_write = client.get("/api/v1/events", HTTP_AUTHORIZATION=f"Bearer {write_key}")

    assert write_with_read.status_code == 403
    assert read_with_write.status_code == 403


def test_a_key_of_another_workspace_neither_writes_nor_reads_here(
    client, post_json, workspace, other_workspace
):
    events_ingest(workspace=workspace, payloads=[{"type": "track", "userId": "ours", "event": "A"}])
    _, other_key = api_key_create(workspace=other_workspace, scopes=["read", "write"])
    auth = f"Bearer {other_key}"

    written = post_json(
        "/api/v1/events",
        [{"userId": "theirs", "event": "B", "workspace": workspace.slug}],
        auth=auth,
    )
    listed = client.get("/api/v1/events?customer=ours", HTTP_AUTHORIZATION=auth)
    listed_all = client.get("/api/v1/events", HTTP_AUTHORIZATION=auth)

    assert written.status_code == 200
    assert list(Event.objects.for_workspace(workspace).values_list("name", flat=True)) == ["A"]
    assert listed.json()["results"] == []
    assert [e["customer"] for e in listed_all.json()["results"]] == ["theirs"]


def test_a_member_reads_their_workspaces_events_in_the_browser(member_client, workspace):
    events_ingest(workspace=workspace, payloads=[{"type": "track", "userId": "u1", "event": "A"}])

    response = member_client.get("/api/v1/events")

    assert response.status_code == 200
    assert [e["name"] for e in response.json()["results"]] == ["A"]


def test_it_publishes_the_schema_and_serves_docs_from_local_files(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ["/v1/track", "/v1/identify", "/v1/page", "/v1/batch", "/api/v1/events"]:
        assert path in paths, path
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()
