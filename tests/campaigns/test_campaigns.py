"""Campaigns: one audited service behind the pages and the API; the goal is the workspace's,
the audience a trait filter, the window credits the campaign's sends and reaches its prompts."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from campaigns.catalogue.campaign_selectors import campaign_numbers
from campaigns.catalogue.campaign_services import (
    campaign_archive,
    campaign_create,
    campaign_update,
)
from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import AuditEntry, Campaign, Message
from campaigns.prompts.selectors import prompt_choice, prompt_for_customer
from campaigns.prompts.services import prompt_template_create
from campaigns.tenancy.changes import Actor, StaleEdit
from memory.models import Customer, Event
from tests.campaigns.config_support import api

ACTOR = Actor.system("test")


@pytest.fixture
def catalogue(workspace):
    messages_upsert(
        workspace=workspace,
        specs=[
            MessageSpec(key="bogo", subject="Buy one", labels={"value_proposition": ["discount"]}),
            MessageSpec(key="new-menu", subject="New", labels={"value_proposition": ["novelty"]}),
        ],
    )
    Customer.objects.bulk_create(
        Customer(workspace=workspace, external_id=f"c{i}", traits={"age": 20 + 10 * i})
        for i in range(5)
    )
    return workspace


@pytest.fixture
def spring(catalogue):
    return campaign_create(
        workspace=catalogue,
        actor=ACTOR,
        slug="spring",
        name="Spring",
        messages=_messages(catalogue, "bogo"),
        audience={"all": [{"trait": "age", "min": 40}]},
        attribution_window_h=24,
    )


def _messages(workspace, *keys):
    return list(Message.objects.for_workspace(workspace).filter(key__in=keys))


# Services --------------------------------------------------------------------------------------


def test_it_creates_a_campaign_with_its_messages_and_audits_them(catalogue, spring):
    assert [m.key for m in spring.messages.all()] == ["bogo"]
    entry = AuditEntry.objects.for_workspace(catalogue).get(object_type="campaign")
    assert entry.action == "create" and entry.actor == "test"
    assert entry.after["messages"] == ["bogo"]
    assert entry.after["audience"] == {"all": [{"trait": "age", "min": 40.0}]}


def test_it_limits_a_campaigns_goal_to_the_workspaces(catalogue):
    with pytest.raises(ValidationError) as refused:
        campaign_create(
            workspace=catalogue, actor=ACTOR, slug="x", name="X", goal_event="Signed Up"
        )
    assert "goal_event" in refused.value.message_dict
    same = campaign_create(
        workspace=catalogue, actor=ACTOR, slug="y", name="Y", goal_event="Order Completed"
    )
    assert same.effective_goal_event == "Order Completed"


def test_it_refuses_an_end_before_the_start_and_a_bad_audience_by_field(catalogue):
    now = timezone.now()
    with pytest.raises(ValidationError) as refused:
        campaign_create(
            workspace=catalogue, actor=ACTOR, slug="x", name="X", starts_at=now, ends_at=now
        )
    assert "ends_at" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        campaign_create(
            workspace=catalogue,
            actor=ACTOR,
            slug="x",
            name="X",
            audience=[{"trait": "shoe_size", "equals": 42}],
        )
    assert (
        "all[0].trait: no customer has a trait 'shoe_size'"
        in (refused.value.message_dict["audience"][0])
    )
    assert not Campaign.objects.for_workspace(catalogue).exists()


def test_it_reports_a_taken_slug_on_the_slug(catalogue, spring):
    with pytest.raises(ValidationError) as refused:
        campaign_create(workspace=catalogue, actor=ACTOR, slug="spring", name="Again")
    assert "slug" in refused.value.message_dict


def test_it_refuses_a_stale_edit_and_audits_the_message_change(catalogue, spring):
    saved = campaign_update(
        workspace=catalogue,
        actor=ACTOR,
        campaign=spring,
        expected_version=1,
        changes={"name": "Spring sale", "messages": _messages(catalogue, "bogo", "new-menu")},
    )
    assert saved.version == 2 and saved.messages.count() == 2
    entry = AuditEntry.objects.for_workspace(catalogue).filter(action="update").get()
    assert entry.before["messages"] == ["bogo"]
    assert entry.after["messages"] == ["bogo", "new-menu"]
    with pytest.raises(StaleEdit):
        campaign_update(
            workspace=catalogue,
            actor=ACTOR,
            campaign=spring,
            expected_version=1,
            changes={"name": "Lost update"},
        )
    assert Campaign.objects.for_workspace(catalogue).get().name == "Spring sale"


def test_it_credits_sends_within_the_campaigns_window(catalogue, spring):
    customer = Customer.objects.for_workspace(catalogue).get(external_id="c3")
    bogo = _messages(catalogue, "bogo")[0]
    start = timezone.now() - timedelta(days=10)

    def event(name, hours, message=None):
        Event.objects.create(
            workspace=catalogue,
            customer=customer,
            name=name,
            occurred_at=start + timedelta(hours=hours),
            message=message,
            dedup_key=f"{name}-{hours}",
        )

    event("Message Sent", 0, bogo)
    event("Order Completed", 20)  # within 24 h: credited
    event("Message Sent", 100, bogo)
    event("Order Completed", 130)  # 30 h later: outside the campaign's 24 h
    numbers = campaign_numbers(campaign=spring)
    assert (numbers.sends, numbers.credited, numbers.window_h) == (2, 1, 24)
    widened = campaign_update(
        workspace=catalogue,
        actor=ACTOR,
        campaign=spring,
        expected_version=None,
        changes={"attribution_window_h": 48},
    )
    assert campaign_numbers(campaign=widened).credited == 2


def test_it_puts_the_campaigns_window_in_its_prompts_context(catalogue, spring):
    prompt_template_create(
        workspace=catalogue,
        slug="campaign",
        name="Campaign",
        text="{{ campaign.name }}: credited within {{ campaign.window }}.",
    )
    choice = prompt_choice(workspace=catalogue, template="campaign", campaign="spring")
    prompt, context = prompt_for_customer(workspace=catalogue, external_id="c1", choice=choice)
    assert prompt.text.strip() == "Spring: credited within 24 h."
    assert context["campaign"]["attribution_window_h"] == 24
    plain = prompt_choice(workspace=catalogue, template="campaign")
    assert (
        prompt_for_customer(workspace=catalogue, external_id="c1", choice=plain)[1]["campaign"]
        == {}
    )


def test_it_archives_and_restores(catalogue, spring):
    archived = campaign_archive(workspace=catalogue, actor=ACTOR, campaign=spring, active=False)
    assert not archived.active
    restored = campaign_archive(workspace=catalogue, actor=ACTOR, campaign=archived, active=True)
    assert restored.active
    actions = AuditEntry.objects.for_workspace(catalogue).values_list("action", flat=True)
    assert {"archive", "restore"} <= set(actions)


# Pages -----------------------------------------------------------------------------------------


def test_it_creates_a_campaign_from_the_form(member_client, catalogue):
    bogo = _messages(catalogue, "bogo")[0]
    response = member_client.post(
        reverse("campaign-new"),
        {
            "slug": "summer",
            "name": "Summer",
            "messages": [bogo.pk],
            "audience": '{"all": [{"trait": "age", "max": 30}]}',
            "active": "on",
        },
    )
    assert response.status_code == 302
    page = member_client.get(reverse("campaign", args=["summer"])).content.decode()
    assert "bogo" in page and "discount" in page.lower()
    assert 'id="audience-size">2<' in page  # c0 (20) and c1 (30)
    entry = AuditEntry.objects.for_workspace(catalogue).get(object_type="campaign")
    assert entry.actor == "marketer"


def test_it_shows_errors_beside_the_fields(member_client, catalogue):
    response = member_client.post(
        reverse("campaign-new"),
        {"slug": "x", "name": "X", "goal_event": "Signed Up", "audience": '[{"trait": 3}]'},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="field-goal_event"' in page and "workspace&#x27;s goal" in page
    assert "all[0].trait" in page
    assert not Campaign.objects.for_workspace(catalogue).exists()


def test_it_refuses_a_stale_form(member_client, catalogue, spring):
    campaign_update(
        workspace=catalogue, actor=ACTOR, campaign=spring, expected_version=1, changes={}
    )
    response = member_client.post(
        reverse("campaign-edit", args=["spring"]),
        {"name": "Mine", "version": 1, "audience": "{}", "active": "on"},
    )
    assert response.status_code == 200
    assert "changed by someone else" in response.content.decode()
    assert Campaign.objects.for_workspace(catalogue).get().name == "Spring"


def test_it_shows_a_viewer_no_edit_controls_and_refuses_their_posts(viewer_client, spring):
    page = viewer_client.get(reverse("campaign", args=["spring"])).content.decode()
    assert "Spring" in page
    assert reverse("campaign-edit", args=["spring"]) not in page
    assert 'id="campaign-actions"' not in page
    assert reverse("campaign-new") not in viewer_client.get(reverse("campaigns")).content.decode()
    assert viewer_client.post(reverse("campaign-new"), {"slug": "x"}).status_code == 403
    archive = reverse("campaign-archive", args=["spring"])
    assert viewer_client.post(archive, {"active": "0"}).status_code == 403
    assert Campaign.objects.for_workspace(spring.workspace_id).get().active


def test_it_lists_the_audience_with_the_reason_next_best_is_missing(member_client, spring):
    page = member_client.get(reverse("campaign", args=["spring"])).content.decode()
    assert "c2" in page and "c4" in page and ">c1<" not in page
    assert "no recompute yet" in page


def test_it_counts_an_audience_live_or_says_what_is_wrong(member_client, catalogue):
    url = reverse("audience-count")
    counted = member_client.post(url, {"audience": '[{"trait": "age", "min": 30}]'}).json()
    assert counted == {"count": 4, "text": "matches 4 customers"}
    wrong = member_client.post(url, {"audience": '[{"trait": "age", "min": "x"}]'})
    assert wrong.status_code == 400 and "all[0].min" in wrong.json()["error"]
    broken = member_client.post(url, {"audience": "[{"})
    assert broken.status_code == 400 and "Not JSON" in broken.json()["error"]


def test_it_hides_other_workspaces_campaigns(member_client, other_workspace):
    campaign_create(workspace=other_workspace, actor=ACTOR, slug="theirs", name="Theirs")
    assert member_client.get(reverse("campaign", args=["theirs"])).status_code == 404
    assert "Theirs" not in member_client.get(reverse("campaigns")).content.decode()


# API -------------------------------------------------------------------------------------------


def test_it_creates_reads_updates_and_archives_over_the_api(client, config_key, catalogue):
    created = api(
        client,
        "post",
        "/api/v1/campaigns",
        config_key,
        {
            "slug": "fall",
            "name": "Fall",
            "messages": ["bogo", "new-menu"],
            "audience": [{"trait": "age", "min": 30, "max": 50}],
            "attribution_window_h": 48,
        },
    )
    assert created.status_code == 201, created.content
    assert created.json()["messages"] == ["bogo", "new-menu"]
    listed = api(client, "get", "/api/v1/campaigns?active=true", config_key).json()
    assert [c["slug"] for c in listed["results"]] == ["fall"]
    changed = api(
        client, "patch", "/api/v1/campaigns/fall", config_key, {"name": "Autumn", "version": 1}
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = api(client, "patch", "/api/v1/campaigns/fall", config_key, {"name": "X", "version": 1})
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    archived = api(client, "delete", "/api/v1/campaigns/fall", config_key)
    assert archived.status_code == 200 and archived.json()["active"] is False
    assert api(client, "get", "/api/v1/campaigns?active=false", config_key).json()["results"]
    entry = AuditEntry.objects.for_workspace(catalogue).filter(object_type="campaign").first()
    assert entry.actor == "API key crm sync (" + entry.api_key.prefix + "…)"


def test_it_answers_bad_values_with_the_field(client, config_key, catalogue):
    cases = [
        ({"slug": "a", "name": "A", "goal_event": "Other"}, "goal_event"),
        ({"slug": "a", "name": "A", "messages": ["nope"]}, "messages"),
        ({"slug": "a", "name": "A", "audience": [{"trait": "age", "min": "x"}]}, "audience"),
        ({"slug": "a", "name": "A", "prompt_template": "nope"}, "prompt_template"),
        ({"slug": "Not A Slug", "name": "A"}, "slug"),
        (
            {
                "slug": "a",
                "name": "A",
                "starts_at": "2026-01-02T00:00:00Z",
                "ends_at": "2026-01-01T00:00:00Z",
            },
            "ends_at",
        ),
    ]
    for body, field in cases:
        response = api(client, "post", "/api/v1/campaigns", config_key, body)
        assert response.status_code == 400, (body, response.content)
        assert field in response.json(), (body, response.json())
    assert not Campaign.objects.for_workspace(catalogue).exists()


def test_it_enforces_scopes_and_workspaces(client, read_key, their_config_key, spring):
    assert api(client, "get", "/api/v1/campaigns/spring", read_key).status_code == 200
    refused = api(client, "post", "/api/v1/campaigns", read_key, {"slug": "a", "name": "A"})
    assert refused.status_code == 403
    assert api(client, "get", "/api/v1/campaigns/spring", their_config_key).status_code == 404
    patch = {"name": "Hijacked"}
    assert api(
        client, "patch", "/api/v1/campaigns/spring", their_config_key, patch
    ).status_code == (404)
    assert api(client, "get", "/api/v1/campaigns", their_config_key).json()["results"] == []


def test_it_lets_session_editors_write_and_viewers_only_read(client, member, viewer, spring):
    client.force_login(viewer)
    assert api(client, "get", "/api/v1/campaigns/spring").status_code == 200
    assert api(client, "patch", "/api/v1/campaigns/spring", data={"name": "V"}).status_code == 403
    client.force_login(member)
    assert api(client, "patch", "/api/v1/campaigns/spring", data={"name": "E"}).status_code == 200
