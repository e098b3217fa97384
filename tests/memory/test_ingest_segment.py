"""The Segment-compatible endpoints: Segment's own examples, its auth, its limits, its answers."""

import gzip
import json
from datetime import UTC, datetime

import pytest

from campaigns.tenancy.services import api_key_create, api_key_revoke
from memory.models import Customer, Event

pytestmark = pytest.mark.django_db

# The examples of Segment's HTTP Tracking API documentation, verbatim but for the key.
TRACK_EXAMPLE = {
    "userId": "019mr8mf4r",
    "event": "Item Purchased",
    "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:12.984Z",
}
IDENTIFY_EXAMPLE = {
    "userId": "019mr8mf4r",
    "traits": {"email": "pgibbons@example.com", "name": "Peter Gibbons", "industry": "Technology"},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:08.276Z",
}
PAGE_EXAMPLE = {
    "userId": "019mr8mf4r",
    "name": "Tracking HTTP API",
    "timestamp": "2012-12-02T00:31:29.738Z",
}
BATCH_EXAMPLE = {
    "batch": [
        {
            "type": "identify",
            "userId": "019mr8mf4r",
            "traits": {"email": "jake@yahoo.com", "name": "Jake Peterson", "age": 26},
            "timestamp": "2012-12-02T00:30:08.276Z",
        },
        {
            "type": "track",
            "userId": "019mr8mf4r",
            "event": "Song Played",
            "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
        {
            "type": "identify",
            "userId": "971mj8mk7p",
            "traits": {"email": "cindy@example.com", "name": "Cindy Gonzalez", "age": 23},
            "timestamp": "2015-2-02T00:30:08.276Z",
        },
        {
            "type": "track",
            "userId": "971mj8mk7p",
            "event": "Song Played",
            "properties": {"name": "Get Right", "artist": "Jennifer Lopez"},
            "timestamp": "2015-2-02T00:30:12.984Z",
        },
    ],
    "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
}


def events_of(workspace):
    return Event.objects.for_workspace(workspace).select_related("customer").order_by("occurred_at")


def test_it_stores_segments_track_example(post_json, write_auth, workspace):
    response = post_json("/v1/track", TRACK_EXAMPLE, auth=write_auth)

    assert response.status_code == 200
    assert response.json() == {"success": True}
    (event,) = events_of(workspace)
    assert event.name == "Item Purchased"
    assert event.customer.external_id == "019mr8mf4r"
    assert event.properties == {"name": "Leap to Conclusions Mat", "revenue": 14.99}
    assert event.occurred_at == datetime(2012, 12, 2, 0, 30, 12, 984000, tzinfo=UTC)
    assert event.dedup_key.startswith("derived:")


def test_it_upserts_traits_from_segments_identify_example(post_json, write_auth, workspace):
    post_json("/v1/identify", IDENTIFY_EXAMPLE, auth=write_auth)
    response = post_json(
        "/v1/identify",
        {"userId": "019mr8mf4r", "traits": {"industry": "Paper", "plan": "pro"}},
        auth=write_auth,
    )

    assert response.status_code == 200
    customer = Customer.objects.for_workspace(workspace).get(external_id="019mr8mf4r")
    assert customer.traits == {
        "email": "pgibbons@example.com",
        "name": "Peter Gibbons",
        "industry": "Paper",
        "plan": "pro",
    }
    assert not events_of(workspace).exists()  # identify updates the customer, stores no event


def test_it_stores_segments_page_example_as_page_viewed(post_json, write_auth, workspace):
    response = post_json("/v1/page", PAGE_EXAMPLE, auth=write_auth)

    assert response.status_code == 200
    (event,) = events_of(workspace)
    assert event.name == "Page Viewed"
    assert event.properties == {"name": "Tracking HTTP API"}


def test_it_stores_segments_batch_example(post_json, write_auth, workspace):
    response = post_json("/v1/batch", BATCH_EXAMPLE, auth=write_auth)

    assert response.status_code == 200
    assert response.json() == {"success": True}
    events = list(events_of(workspace))
    assert [(e.customer.external_id, e.properties["artist"]) for e in events] == [
        ("019mr8mf4r", "Dierks Bentley"),
        ("971mj8mk7p", "Jennifer Lopez"),
    ]
    # Segment's example writes "2015-2-02": an unpadded month is read, not rejected.
    assert events[1].occurred_at == datetime(2015, 2, 2, 0, 30, 12, 984000, tzinfo=UTC)
    cindy = Customer.objects.for_workspace(workspace).get(external_id="971mj8mk7p")
    assert cindy.traits == {"email": "cindy@example.com", "name": "Cindy Gonzalez", "age": 23}


def test_it_merges_the_batch_context_traits_into_each_item(post_json, write_auth, workspace):
    body = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "A", "context": {"traits": {"b": 2}}},
            {"type": "track", "userId": "u2", "event": "A"},
        ],
        "context": {"traits": {"a": 1, "b": 1}},
    }

    post_json("/v1/batch", body, auth=write_auth)

    traits = dict(Customer.objects.for_workspace(workspace).values_list("external_id", "traits"))
    assert traits == {"u1": {"a": 1, "b": 2}, "u2": {"a": 1, "b": 1}}


def test_it_takes_the_write_key_from_the_body(post_json, write_key, workspace):
    response = post_json("/v1/track", {**TRACK_EXAMPLE, "writeKey": write_key})

    assert response.status_code == 200
    assert events_of(workspace).count() == 1


def test_it_answers_401_without_a_key(post_json, workspace):
    response = post_json("/v1/track", TRACK_EXAMPLE)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert not events_of(workspace).exists()


@pytest.mark.parametrize("where", ["header", "body"])
def test_it_answers_401_for_a_wrong_key(post_json, basic_auth, write_key, workspace, where):
    wrong = write_key[:-4] + "XXXX"
    if where == "header":
        response = post_json("/v1/track", TRACK_EXAMPLE, auth=basic_auth(wrong))
    else:
        response = post_json("/v1/track", {**TRACK_EXAMPLE, "writeKey": wrong})

    assert response.status_code == 401
    assert not events_of(workspace).exists()


def test_it_answers_401_for_a_revoked_key(post_json, basic_auth, workspace):
    api_key, raw_key = api_key_create(workspace=workspace, scopes=["write"])
    api_key_revoke(api_key=api_key)

    response = post_json("/v1/batch", BATCH_EXAMPLE, auth=basic_auth(raw_key))

    assert response.status_code == 401


def test_it_answers_403_for_a_read_only_key(post_json, basic_auth, read_key, workspace):
    response = post_json("/v1/track", TRACK_EXAMPLE, auth=basic_auth(read_key))

    assert response.status_code == 403
    assert not events_of(workspace).exists()


def test_it_writes_with_another_workspaces_key_only_into_that_workspace(
    post_json, basic_auth, workspace, other_workspace
):
    _, other_key = api_key_create(workspace=other_workspace, scopes=["write"])

    response = post_json(
        "/v1/batch", {**BATCH_EXAMPLE, "workspace": "acme"}, auth=basic_auth(other_key)
    )

    assert response.status_code == 200
    assert not events_of(workspace).exists()
    assert not Customer.objects.for_workspace(workspace).exists()
    assert events_of(other_workspace).count() == 2


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_it_answers_400_for_malformed_json(post_json, write_auth, workspace, path):
    response = post_json(path, b'{"userId": "u1", "event": "A",', auth=write_auth)

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert "malformed JSON" in response.json()["error"]


def test_it_answers_400_for_a_batch_that_is_not_a_list(post_json, write_auth):
    response = post_json("/v1/batch", {"batch": {"type": "track"}}, auth=write_auth)

    assert response.status_code == 400
    assert "batch" in response.json()["error"]


def test_it_answers_400_naming_the_event_size_limit(post_json, write_auth, workspace):
    event = {**TRACK_EXAMPLE, "properties": {"blob": "x" * 33_000}}

    response = post_json("/v1/track", event, auth=write_auth)

    assert response.status_code == 400
    assert response.json()["limit"] == "event_size"
    assert "32 KB" in response.json()["error"]
    assert not events_of(workspace).exists()


def test_it_answers_400_naming_the_event_size_limit_inside_a_batch(post_json, write_auth):
    big = {"type": "track", "userId": "u1", "event": "A", "properties": {"blob": "x" * 33_000}}

    response = post_json("/v1/batch", {"batch": [big]}, auth=write_auth)

    assert response.status_code == 400
    assert response.json()["limit"] == "event_size"


def test_it_answers_400_naming_the_request_size_limit(post_json, write_auth, workspace):
    item = {"type": "track", "userId": "u1", "event": "A", "properties": {"blob": "x" * 30_000}}

    response = post_json("/v1/batch", {"batch": [item] * 18}, auth=write_auth)

    assert response.status_code == 400
    assert response.json()["limit"] == "request_size"
    assert "500 KB" in response.json()["error"]
    assert not events_of(workspace).exists()


def test_it_answers_400_naming_the_batch_length_limit(post_json, write_auth, workspace):
    item = {"type": "track", "userId": "u1", "event": "A"}

    response = post_json("/v1/batch", {"batch": [item] * 2_501}, auth=write_auth)

    assert response.status_code == 400
    assert response.json()["limit"] == "batch_length"
    assert "2,500" in response.json()["error"]


def test_it_accepts_a_full_batch_of_2500(post_json, write_auth, workspace):
    batch = [
        {"type": "track", "userId": f"u{i % 40}", "event": "A", "messageId": f"m{i}"}
        for i in range(2_500)
    ]

    response = post_json("/v1/batch", {"batch": batch}, auth=write_auth)

    assert response.status_code == 200
    assert events_of(workspace).count() == 2_500


@pytest.mark.parametrize(
    "event",
    [
        {"event": "Item Purchased", "properties": {"revenue": 1}},
        {"userId": "", "anonymousId": None, "event": "Item Purchased"},
    ],
)
def test_it_answers_400_for_a_call_without_user_or_anonymous_id(
    post_json, write_auth, workspace, event
):
    response = post_json("/v1/track", event, auth=write_auth)

    assert response.status_code == 400
    assert response.json()["field"] == "userId"
    assert "userId or anonymousId" in response.json()["error"]
    assert not events_of(workspace).exists()


def test_it_answers_400_for_a_track_without_event_name(post_json, write_auth):
    response = post_json("/v1/track", {"userId": "u1"}, auth=write_auth)

    assert response.status_code == 400
    assert response.json()["field"] == "event"


def test_it_stores_the_valid_items_of_a_batch_and_lists_the_others(
    post_json, write_auth, workspace
):
    body = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "A"},
            {"type": "track", "event": "No one"},
            {"type": "alias", "userId": "u1", "previousId": "x"},
            {"type": "track", "userId": ["not", "a", "string"], "event": "A"},
            {"type": "track", "anonymousId": "anon-1", "event": "B"},
        ]
    }

    response = post_json("/v1/batch", body, auth=write_auth)

    assert response.status_code == 200
    answer = response.json()
    assert answer["success"] is True
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [
        (1, "userId"),
        (2, "type"),
        (3, "userId"),
    ]
    assert events_of(workspace).count() == 2


def test_it_stores_a_retried_request_once(post_json, write_auth, workspace):
    body = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "A", "messageId": "ajs-1"},
            # No messageId: the key is derived from the content and the sender's time.
            {"type": "track", "userId": "u1", "event": "B", "timestamp": "2026-01-05T10:00:00Z"},
        ]
    }

    first = post_json("/v1/batch", body, auth=write_auth)
    second = post_json("/v1/batch", body, auth=write_auth)

    assert first.status_code == second.status_code == 200
    assert events_of(workspace).count() == 2


def test_it_counts_repeats_without_messageid_or_timestamp_as_new_events(
    post_json, write_auth, workspace
):
    event = {"userId": "u1", "event": "Button Clicked"}

    post_json("/v1/track", event, auth=write_auth)
    post_json("/v1/track", event, auth=write_auth)

    # Nothing tells a retry from a second click: the documented reason to send a messageId.
    assert events_of(workspace).count() == 2


def test_it_stores_unicode_and_large_property_values_intact(post_json, write_auth, workspace):
    large = "naïve café ☕ 東京 🎉 " * 1_000  # 29,000 bytes of UTF-8, under the 32 KB limit
    event = {
        "userId": "josé-😀",
        "event": "Commande passée ✓",
        "properties": {"note": large, "emoji": "👩‍👩‍👧", "rtl": "مرحبا", "nested": {"ü": ["ß"]}},
    }

    response = post_json("/v1/track", json.dumps(event, ensure_ascii=False), auth=write_auth)

    assert response.status_code == 200
    (stored,) = events_of(workspace)
    assert stored.customer.external_id == "josé-😀"
    assert stored.name == "Commande passée ✓"
    assert stored.properties == event["properties"]


def test_it_refuses_the_nul_character_postgresql_cannot_store(post_json, write_auth, workspace):
    response = post_json(
        "/v1/track",
        b'{"userId": "u1", "event": "A", "properties": {"x": "a\\u0000b"}}',
        auth=write_auth,
    )

    assert response.status_code == 400
    assert "NUL" in response.json()["error"]


def test_it_reads_a_gzipped_body(client, write_auth, workspace):
    body = gzip.compress(json.dumps(BATCH_EXAMPLE).encode())

    response = client.post(
        "/v1/batch",
        data=body,
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_AUTHORIZATION=write_auth,
    )

    assert response.status_code == 200
    assert events_of(workspace).count() == 2


def test_it_answers_429_with_retry_after_past_the_rate_limit(
    post_json, basic_auth, workspace, settings
):
    settings.PRIMER_INGEST_RATE_LIMIT = 2
    settings.PRIMER_INGEST_RATE_WINDOW_S = 60
    # Fresh keys start fresh counts (clearing the cache would flush a shared Redis).
    _, busy_key = api_key_create(workspace=workspace, scopes=["write"])
    _, calm_key = api_key_create(workspace=workspace, scopes=["write"])

    statuses = [
        post_json("/v1/track", TRACK_EXAMPLE, auth=basic_auth(busy_key)).status_code
        for _ in range(3)
    ]
    limited = post_json("/v1/track", TRACK_EXAMPLE, auth=basic_auth(busy_key))
    other = post_json("/v1/track", TRACK_EXAMPLE, auth=basic_auth(calm_key))

    assert statuses == [200, 200, 429]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert other.status_code == 200  # the limit is per key
