"""Hostile input to ingestion: a session without a key, bad bytes, deep nesting, label floods."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client

from campaigns.models import Label, LabelSet, Message
from memory.models import Event

pytestmark = pytest.mark.django_db

TRACK = {"userId": "u1", "event": "Signed Up", "messageId": "m-1"}


@pytest.fixture
def browser(member):
    """A browser logged in to Primer, as a cross-site form post would find it: CSRF enforced."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    return client


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", TRACK),
        ("/v1/page", {"userId": "u1", "name": "Home"}),
        ("/v1/batch", {"batch": [{"type": "track", **TRACK}]}),
    ],
)
def test_it_ignores_the_browser_session_on_the_segment_endpoints(browser, workspace, path, body):
    response = browser.post(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 401
    assert not Event.objects.for_workspace(workspace).exists()


def test_it_refuses_a_session_write_to_the_native_endpoint_without_a_csrf_token(browser, workspace):
    response = browser.post(
        "/api/v1/events", data=json.dumps([TRACK]), content_type="application/json"
    )
    assert response.status_code == 403
    assert not Event.objects.for_workspace(workspace).exists()


def test_it_still_takes_the_key_on_the_segment_endpoints(browser, write_key, workspace):
    body = {"writeKey": write_key, **TRACK}
    response = browser.post("/v1/track", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert Event.objects.for_workspace(workspace).count() == 1


GOOD = b'{"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "good-1"}'
BAD_UTF8 = b'{"type": "track", "userId": "u\xff\xfe2", "event": "Signed Up", "messageId": "bad"}'
GOOD_2 = b'{"type": "track", "userId": "u3", "event": "Paid", "messageId": "good-2"}'


def too_deep(levels: int) -> bytes:
    nested = b"[" * levels + b"]" * levels
    return b'{"userId": "u4", "event": "Deep", "properties": {"a": ' + nested + b"}}"


def post_raw(client, path: str, body: bytes, auth: str):
    return client.post(path, data=body, content_type="application/json", HTTP_AUTHORIZATION=auth)


@pytest.mark.parametrize("levels", [100, 5_000])
def test_it_rejects_only_the_batch_items_with_bad_utf8_or_too_deep_nesting(
    client, write_auth, workspace, levels
):
    body = b'{"batch": [' + b", ".join([GOOD, BAD_UTF8, too_deep(levels), GOOD_2]) + b"]}"
    response = post_raw(client, "/v1/batch", body, write_auth)
    assert response.status_code == 200, response.content
    rejected = response.json()["rejected"]
    assert [(r["index"], r["field"]) for r in rejected] == [(1, ""), (2, "properties")]
    assert "UTF-8" in rejected[0]["reason"]
    assert "nested deeper than 64 levels" in rejected[1]["reason"]
    stored = Event.objects.for_workspace(workspace).values_list("dedup_key", flat=True)
    assert sorted(stored) == ["good-1", "good-2"]


@pytest.mark.parametrize("levels", [100, 5_000])
def test_it_reports_bad_utf8_and_deep_nesting_by_index_on_the_native_endpoint(
    client, write_auth, workspace, levels
):
    body = b"[" + b", ".join([GOOD, BAD_UTF8, too_deep(levels), GOOD_2]) + b"]"
    response = post_raw(client, "/api/v1/events", body, write_auth)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["stored", "rejected", "rejected", "stored"]
    assert results[2]["field"] == "properties"
    assert Event.objects.for_workspace(workspace).count() == 2


def test_it_answers_400_naming_bad_utf8_in_a_single_call(client, write_auth, workspace):
    response = post_raw(client, "/v1/track", BAD_UTF8, write_auth)
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]


def test_it_reports_bad_utf8_and_deep_lines_of_a_file_and_goes_on(tmp_path, workspace):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([GOOD, BAD_UTF8, too_deep(5_000), GOOD_2]) + b"\n")
    err = io.StringIO()
    call_command(
        "import_events", str(path), workspace=workspace.slug, stdout=io.StringIO(), stderr=err
    )
    assert f"{path}:2:" in err.getvalue() and "UTF-8" in err.getvalue()
    assert f"{path}:3: properties:" in err.getvalue()
    assert Event.objects.for_workspace(workspace).count() == 2


def test_it_reads_the_write_key_beside_an_item_nested_too_deep(client, write_key, workspace):
    key = json.dumps(write_key).encode()
    body = b'{"writeKey": ' + key + b', "batch": [' + GOOD + b", " + too_deep(5_000) + b"]}"
    response = client.post("/v1/batch", data=body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert [r["index"] for r in response.json()["rejected"]] == [1]
    assert Event.objects.for_workspace(workspace).count() == 1


def send(index: int, labels: dict) -> dict:
    return {
        "type": "track",
        "userId": f"u{index}",
        "event": "Message Sent",
        "messageId": f"send-{index}",
        "properties": {"message_id": f"msg-{index}", "text": "Hi", "labels": labels},
    }


def test_it_rejects_the_events_that_would_pass_the_label_caps(
    client, write_auth, workspace, settings
):
    sets_before = LabelSet.objects.for_workspace(workspace).count()
    labels_before = Label.objects.for_workspace(workspace).count()
    settings.PRIMER_MAX_LABEL_SETS = sets_before + 2
    settings.PRIMER_MAX_LABELS = labels_before + 3
    events = [
        send(0, {"mood": ["playful", "calm"]}),
        send(1, {"perk": "discount", "style": "bold"}),  # a third new set
        send(2, {"perk": "discount"}),
        send(3, {"mood": ["serious"]}),  # a fourth new label
        send(4, {"mood": "calm"}),  # both exist by now: nothing new
    ]
    response = client.post(
        "/api/v1/events",
        data=json.dumps(events),
        content_type="application/json",
        HTTP_AUTHORIZATION=write_auth,
    )
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["stored", "rejected", "stored", "rejected", "stored"]
    assert results[1]["field"] == "properties.labels"
    assert "PRIMER_MAX_LABEL_SETS" in results[1]["reason"]
    assert "PRIMER_MAX_LABELS" in results[3]["reason"]
    assert LabelSet.objects.for_workspace(workspace).count() == sets_before + 2
    assert Label.objects.for_workspace(workspace).count() == labels_before + 3
    assert not Message.objects.for_workspace(workspace).filter(key__in=["msg-1", "msg-3"]).exists()


def test_it_reports_the_label_cap_on_the_line_of_an_imported_file(tmp_path, workspace, settings):
    labels_before = Label.objects.for_workspace(workspace).count()
    settings.PRIMER_MAX_LABELS = labels_before + 1
    path = tmp_path / "sends.jsonl"
    path.write_text("\n".join(json.dumps(send(i, {"tone": f"t{i}"})) for i in range(3)) + "\n")
    err = io.StringIO()
    call_command(
        "import_events", str(path), workspace=workspace.slug, stdout=io.StringIO(), stderr=err
    )
    assert f"{path}:2: properties.labels:" in err.getvalue()
    assert f"{path}:3: properties.labels:" in err.getvalue()
    assert Label.objects.for_workspace(workspace).count() == labels_before + 1
    assert Event.objects.for_workspace(workspace).count() == 1
