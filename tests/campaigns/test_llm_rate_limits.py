"""Endpoints that call the LLM are rate-limited per key and per user, with a clear 429."""

import pytest
from django.urls import reverse
from redis.exceptions import ConnectionError as RedisConnectionError

from campaigns.models import Label, Membership
from campaigns.tenancy.services import api_key_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_counts")]


@pytest.fixture
def limit_two(settings):
    """Two LLM calls per hour; no LLM configured, so each allowed call answers 503 at once."""
    settings.PRIMER_LLM_RATE_LIMIT = 2
    settings.PRIMER_LLM_RATE_WINDOW_S = 3600
    settings.PRIMER_LLM_BASE_URL = ""


def key_auth(workspace, name: str) -> dict:
    _, raw = api_key_create(workspace=workspace, scopes=["read", "config"], name=name)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def preview(client, auth):
    url = reverse("api-customer-prompt-preview", args=["cust-1"])
    return client.post(url, {}, content_type="application/json", **auth)


def test_the_api_preview_is_limited_per_key(client, workspace, rich_customer, limit_two):
    busy, calm = key_auth(workspace, "busy"), key_auth(workspace, "calm")
    assert [preview(client, busy).status_code for _ in range(3)] == [503, 503, 429]
    refused = preview(client, busy)
    assert refused.status_code == 429
    assert "Too many LLM requests: at most 2 per 3600 s" in refused.json()["detail"]
    assert int(refused["Retry-After"]) > 0
    assert preview(client, calm).status_code == 503  # another key has its own count


def test_drafts_and_label_suggestions_share_the_keys_llm_count(
    client, workspace, rich_customer, limit_two
):
    auth = key_auth(workspace, "writer")
    label = Label.objects.for_workspace(workspace).select_related("label_set").first()
    drafts = {"label_set": label.label_set.slug, "label": label.slug, "count": 1}
    answers = [
        client.post("/api/v1/drafts", drafts, content_type="application/json", **auth),
        client.post(
            "/api/v1/messages/suggest-labels",
            {"text": "Half price"},
            content_type="application/json",
            **auth,
        ),
        client.post("/api/v1/drafts", drafts, content_type="application/json", **auth),
        client.post(
            "/api/v1/messages/suggest-labels",
            {"text": "Half price"},
            content_type="application/json",
            **auth,
        ),
    ]
    assert [answer.status_code for answer in answers] == [503, 503, 429, 429]
    assert "Too many LLM requests" in answers[3].json()["detail"]


def test_the_preview_page_is_limited_per_user(
    client, make_user, workspace, rich_customer, limit_two, fake_llm
):
    url = reverse("customer-prompt", args=["cust-1"])
    client.force_login(make_user("busy", workspace=workspace, role=Membership.Role.VIEWER))
    codes = [client.post(url, {"question": "Which?"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = client.post(url, {"question": "Which?"})
    assert "Too many LLM requests: at most 2 per 3600 s" in refused.content.decode()
    client.force_login(make_user("calm", workspace=workspace, role=Membership.Role.VIEWER))
    assert client.post(url, {"question": "Which?"}).status_code == 200


def test_a_user_shares_one_count_between_pages_and_api(
    client, make_user, workspace, rich_customer, limit_two
):
    client.force_login(make_user("ed", workspace=workspace, role=Membership.Role.EDITOR))
    label = Label.objects.for_workspace(workspace).get(slug="discount")
    propose = {"action": "propose", "label": label.pk, "count": 1}
    suggest = {"text": "20% off"}
    assert preview(client, {}).status_code == 503  # the API, signed in: the same user's count
    assert client.post(reverse("message-drafts"), propose).status_code == 200
    refused = client.post(reverse("catalogue-messages-suggest-labels"), suggest)
    assert refused.status_code == 429 and refused.json()["reason"] == "rate_limited"
    drafts = client.post(reverse("message-drafts"), propose)
    assert drafts.status_code == 429
    assert "Too many LLM requests" in drafts.content.decode()


def test_the_limit_holds_per_process_when_redis_is_gone(
    client, workspace, rich_customer, limit_two, monkeypatch
):
    def gone(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr("config.rate_limit.cache.add", gone)
    monkeypatch.setattr("config.rate_limit.cache.incr", gone)
    auth = key_auth(workspace, "offline")
    assert [preview(client, auth).status_code for _ in range(3)] == [503, 503, 429]


def test_the_next_message_drafts_are_limited_per_key(client, workspace, rich_customer, limit_two):
    _, raw = api_key_create(workspace=workspace, scopes=["read", "write"], name="drafter")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    url = reverse("api-customer-drafts", args=["cust-1"])
    label = Label.objects.for_workspace(workspace).filter(label_set__slug="value_proposition")
    body = {"value_proposition": label.first().slug, "count": 1}
    answers = [
        client.post(url, body, content_type="application/json", **auth).status_code
        for _ in range(3)
    ]
    assert answers == [503, 503, 429]
