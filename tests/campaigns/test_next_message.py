"""Draft the next message for a customer: the LLM's inputs, each draft's checks, saving."""

import json

import pytest
from django.utils import timezone

from campaigns.models import AuditEntry, Campaign, Guardrail, Message
from campaigns.prompts.selectors import prompt_choice, prompt_for_customer
from tests.campaigns.prompt_support import MEMORY_AT, event, label

pytestmark = pytest.mark.django_db

SPRING_COPY = {"subject": "Spring sale!", "body": "20% off everything this weekend"}
FRESH = {"subject": "Your Tuesday treat", "body": "A quiet hour and a free pastry with any coffee"}


def drafts_url(external_id="cust-1"):
    return f"/api/v1/customers/{external_id}/drafts"


def auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def ask(client, key, external_id="cust-1", **body):
    return client.post(drafts_url(external_id), body, content_type="application/json", **auth(key))


def test_it_drafts_with_the_customers_prompt_and_the_value_propositions_brief(
    client, workspace, write_key, rich_customer, fake_llm
):
    discount = label(workspace, "discount")
    discount.description = "Money off a purchase"
    discount.save()
    fake_llm.drafts = [SPRING_COPY, FRESH]
    fake_llm.labels = ["tone:playful"]

    response = ask(client, write_key, value_proposition="discount", count=2)

    assert response.status_code == 200, response.content
    data = response.json()
    draft_call = fake_llm.requests[0]
    expected, _ = prompt_for_customer(
        workspace=workspace, external_id="cust-1", choice=prompt_choice(workspace=workspace)
    )
    system, user = draft_call["messages"]
    assert system["content"].startswith(expected.text)
    assert "Reply with JSON only" in system["content"]
    assert '"discounts"' in user["content"] and '"Money off a purchase"' in user["content"]
    assert draft_call["response_format"]["type"] == "json_schema"
    assert data["brief"]["source"] == "value_proposition:discount"
    assert data["prompt"]["content_hash"] == expected.content_hash
    copy, fresh = data["drafts"]
    # The copy of what they received four times lately carries a heavy load; the fresh one not.
    assert copy["habituation"]["nearest_message"] == "spring-sale"
    assert copy["habituation"]["nearest_similarity"] == pytest.approx(1.0, abs=1e-3)
    assert copy["habituation"]["risk"] == "high"
    assert copy["habituation"]["load"] > 2.5
    assert fresh["habituation"]["load"] < 0.5 * copy["habituation"]["load"]
    assert fresh["habituation"]["risk"] == "low"
    # Suggested from the taxonomy, plus the proposition it was written for.
    assert copy["labels"] == ["tone:playful", "value_proposition:discount"]
    assert copy["guardrails"] == {"allowed": True, "reasons": [], "rules_checked": 0}


def test_it_briefs_with_a_campaigns_guidance(client, workspace, write_key, rich_customer, fake_llm):
    Campaign.objects.create(
        workspace=workspace, slug="spring", name="Spring", guidance="Mention the new terrace."
    )
    fake_llm.drafts = [FRESH]
    response = ask(client, write_key, campaign="spring", count=1)
    assert response.status_code == 200, response.content
    user = fake_llm.requests[0]["messages"][1]["content"]
    assert "The marketer's guidance: Mention the new terrace." in user
    assert response.json()["brief"]["source"] == "campaign:spring"


def test_it_shows_which_guardrail_a_draft_would_meet(
    client, workspace, write_key, rich_customer, fake_llm
):
    discount = label(workspace, "discount")
    worn = Message.objects.for_workspace(workspace).get(key="spring-sale")
    event(rich_customer, "Message Sent", 2, message=worn, at=timezone.now())
    Guardrail.objects.create(
        workspace=workspace,
        name="One discount a week",
        kind=Guardrail.Kind.FREQUENCY_CAP,
        label=discount,
        limit=1,
        period=Guardrail.Period.WEEK,
    )
    fake_llm.drafts = [FRESH]
    response = ask(client, write_key, value_proposition="discount", count=1)
    (draft,) = response.json()["drafts"]
    assert draft["guardrails"]["allowed"] is False
    assert draft["guardrails"]["rules_checked"] == 1
    assert draft["guardrails"]["reasons"][0].startswith("One discount a week: ")


def test_it_keeps_the_drafts_when_the_label_suggestion_fails(
    client, workspace, write_key, rich_customer, fake_llm
):
    label(workspace, "discount")
    fake_llm.answers = [json.dumps({"messages": [FRESH]}), "no", "still no"]
    response = ask(client, write_key, value_proposition="discount", count=1)
    (draft,) = response.json()["drafts"]
    assert draft["subject"] == FRESH["subject"]
    assert "did not fit" in draft["labels_problem"]
    assert draft["labels"] == ["value_proposition:discount"]


def test_it_works_with_a_server_that_refuses_json_schemas(
    client, workspace, write_key, rich_customer, fake_llm
):
    label(workspace, "discount")
    fake_llm.schemas = "refuse"
    fake_llm.drafts = [FRESH]
    response = ask(client, write_key, value_proposition="discount", count=1)
    assert response.status_code == 200, response.content
    assert response.json()["drafts"][0]["body"] == FRESH["body"]


def test_it_says_plainly_when_no_llm_is_configured(client, workspace, write_key, rich_customer):
    label(workspace, "discount")
    response = ask(client, write_key, value_proposition="discount")
    assert response.status_code == 503
    assert response.json()["reason"] == "not_configured"
    assert "PRIMER_LLM_BASE_URL" in response.json()["detail"]


def test_it_says_so_when_the_llm_is_unreachable(
    client, workspace, write_key, rich_customer, settings
):
    label(workspace, "discount")
    settings.PRIMER_LLM_BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    settings.PRIMER_LLM_TIMEOUT_S = 1.0
    response = ask(client, write_key, value_proposition="discount")
    assert response.status_code == 503
    assert response.json()["reason"] == "connection_error"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "campaign"),
        ({"campaign": "spring", "value_proposition": "discount"}, "campaign"),
        ({"campaign": "nope"}, "campaign"),
        ({"value_proposition": "nope"}, "value_proposition"),
        ({"value_proposition": "discount", "count": 99}, "count"),
    ],
)
def test_it_refuses_a_missing_or_unknown_brief_naming_the_field(
    client, workspace, write_key, rich_customer, body, field
):
    label(workspace, "discount")
    response = ask(client, write_key, **body)
    assert response.status_code == 400
    assert field in response.json()


def test_it_answers_404_for_another_workspaces_customer(
    client, workspace, other_workspace, write_key, fake_llm
):
    from tests.campaigns.prompt_support import customer

    customer(other_workspace, "theirs")
    label(workspace, "discount")
    assert ask(client, write_key, "theirs", value_proposition="discount").status_code == 404
    assert fake_llm.requests == []


def test_it_needs_the_write_scope(client, workspace, read_key, rich_customer, fake_llm):
    label(workspace, "discount")
    assert ask(client, read_key, value_proposition="discount").status_code == 403
    saved = client.post(
        drafts_url() + "/save",
        {"key": "x", "body": "y"},
        content_type="application/json",
        **auth(read_key),
    )
    assert saved.status_code == 403
    assert fake_llm.requests == []


def test_it_saves_a_draft_as_a_message_with_its_labels_audited(
    client, workspace, write_key, rich_customer
):
    label(workspace, "discount")
    response = client.post(
        drafts_url() + "/save",
        {**FRESH, "key": "tuesday-treat", "labels": ["value_proposition:discount", "tone:playful"]},
        content_type="application/json",
        **auth(write_key),
    )
    assert response.status_code == 201, response.content
    assert response.json()["labels"] == ["tone:playful", "value_proposition:discount"]
    saved = Message.objects.for_workspace(workspace).get(key="tuesday-treat")
    assert (saved.subject, saved.body) == (FRESH["subject"], FRESH["body"])
    entry = AuditEntry.objects.for_workspace(workspace).filter(object_repr__contains="tuesday")
    (audit,) = entry
    assert audit.action == AuditEntry.Action.CREATE
    assert audit.actor.startswith("API key writer")
    again = client.post(
        drafts_url() + "/save",
        {**FRESH, "key": "tuesday-treat", "labels": ["value_proposition:nope"]},
        content_type="application/json",
        **auth(write_key),
    )
    assert again.status_code == 400
    assert "labels" in again.json()


def test_memory_time_is_when_the_load_is_measured(
    client, workspace, write_key, rich_customer, fake_llm
):
    label(workspace, "discount")
    fake_llm.drafts = [FRESH]
    data = ask(client, write_key, value_proposition="discount", count=1).json()
    assert data["load_as_of"].replace("Z", "+00:00") == MEMORY_AT.isoformat()
