"""Webhooks are edited and their secrets rotated, from the page and the API, audited."""

import pytest
from django.urls import reverse

from campaigns.catalogue.campaign_services import campaign_create
from campaigns.models import AuditEntry, Webhook
from campaigns.tenancy.changes import Actor
from campaigns.webhooks.services import webhook_create
from tests.campaigns.config_support import api


@pytest.fixture
def hook(workspace):
    return webhook_create(workspace=workspace, url="https://crm.example/primer", description="CRM")


def test_it_edits_a_webhook_from_the_page(member_client, workspace, hook):
    campaign = campaign_create(workspace=workspace, actor=Actor.system(), slug="s", name="S")
    url = reverse("webhook-edit", args=[hook.pk])
    form = member_client.get(url).content.decode()
    assert 'name="version" value="1"' in form
    response = member_client.post(
        url,
        {
            "url": "https://crm.example/v2",
            "description": "CRM v2",
            "campaign": campaign.pk,
            "version": 1,
        },
    )
    assert response.status_code == 302
    saved = Webhook.objects.for_workspace(workspace).get()
    assert (saved.url, saved.campaign, saved.active, saved.version) == (
        "https://crm.example/v2",
        campaign,
        False,
        2,
    )
    stale = member_client.post(url, {"url": "https://x.example", "version": 1})
    assert "changed by someone else" in stale.content.decode()
    bad = member_client.post(url, {"url": "ftp://x", "version": 2})
    assert 'id="field-url"' in bad.content.decode() and bad.status_code == 200
    entry = AuditEntry.objects.for_workspace(workspace).filter(action="update").get()
    assert entry.before["url"] == "https://crm.example/primer" and entry.actor == "marketer"


def test_it_rotates_the_secret_from_the_page(member_client, workspace, hook):
    old = hook.secret
    member_client.post(reverse("webhook-action", args=[hook.pk]), {"action": "rotate"})
    rotated = Webhook.objects.for_workspace(workspace).get()
    assert rotated.secret != old and rotated.secret_rotated_at is not None
    page = member_client.get(reverse("webhook", args=[hook.pk])).content.decode()
    assert rotated.secret in page and old not in page
    entry = AuditEntry.objects.for_workspace(workspace).filter(action="update").get()
    assert "secret" not in entry.after and entry.after["secret_rotated_at"]


def test_it_shows_viewers_no_edit_link_and_refuses_their_posts(viewer_client, hook):
    page = viewer_client.get(reverse("webhook", args=[hook.pk])).content.decode()
    assert reverse("webhook-edit", args=[hook.pk]) not in page
    edit = viewer_client.post(reverse("webhook-edit", args=[hook.pk]), {"url": "https://x.io"})
    assert edit.status_code == 403
    rotate = viewer_client.post(reverse("webhook-action", args=[hook.pk]), {"action": "rotate"})
    assert rotate.status_code == 403


def test_it_manages_webhooks_over_the_api(client, config_key, read_key, workspace):
    created = api(client, "post", "/api/v1/webhooks", config_key, {"url": "https://a.example/h"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert len(body["secret"]) > 20
    shown = api(client, "get", f"/api/v1/webhooks/{body['id']}", read_key).json()
    assert "secret" not in shown and shown["url"] == "https://a.example/h"
    patched = api(
        client,
        "patch",
        f"/api/v1/webhooks/{body['id']}",
        config_key,
        {"active": False, "version": 1},
    )
    assert patched.status_code == 200 and patched.json()["active"] is False
    stale = api(client, "patch", f"/api/v1/webhooks/{body['id']}", config_key, {"version": 1})
    assert stale.status_code == 409
    rotated = api(client, "post", f"/api/v1/webhooks/{body['id']}/rotate-secret", config_key)
    assert rotated.status_code == 200 and rotated.json()["secret"] != body["secret"]
    bad = api(
        client, "post", "/api/v1/webhooks", config_key, {"url": "https://a.io", "campaign": "no"}
    )
    assert bad.status_code == 400 and "campaign" in bad.json()
    assert (
        api(client, "post", "/api/v1/webhooks", read_key, {"url": "https://a.io"}).status_code
        == 403
    )
    assert api(client, "get", "/api/v1/webhooks?active=false", read_key).json()["results"]
    assert api(client, "delete", f"/api/v1/webhooks/{body['id']}", config_key).status_code == 204
    assert not Webhook.objects.for_workspace(workspace).exists()
    actions = AuditEntry.objects.for_workspace(workspace).values_list("action", flat=True)
    assert {"create", "update", "delete"} <= set(actions)


def test_it_hides_other_workspaces_webhooks(client, their_config_key, hook):
    assert api(client, "get", f"/api/v1/webhooks/{hook.pk}", their_config_key).status_code == 404
    rotate = f"/api/v1/webhooks/{hook.pk}/rotate-secret"
    assert api(client, "post", rotate, their_config_key).status_code == 404
