"""The customer's "Draft the next message" page: drafts with their checks, saving, viewers."""

import pytest
from django.urls import reverse

from campaigns.models import AuditEntry, Message
from tests.campaigns.prompt_support import label

pytestmark = pytest.mark.django_db

FRESH = {"subject": "Your Tuesday treat", "body": "A quiet hour and a free pastry with any coffee"}


def page(external_id="cust-1"):
    return reverse("customer-next-message", args=[external_id])


def test_it_shows_each_draft_with_its_load_labels_and_guardrails(
    member_client, workspace, rich_customer, fake_llm
):
    label(workspace, "discount")
    fake_llm.drafts = [
        FRESH,
        {"subject": "Spring sale!", "body": "20% off everything this weekend"},
    ]
    response = member_client.post(
        page(), {"action": "draft", "brief": "value_proposition:discount", "count": 2}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert FRESH["subject"] in html
    assert "nearest recent message <code>spring-sale</code>" in html
    assert "(high risk)" in html and "(low risk)" in html
    assert "<code>value_proposition:discount</code>" in html
    assert "allowed now (0 checked)" in html
    assert 'value="value_proposition:discount"' in html  # the save form's labels, filled in


def test_it_saves_a_draft_with_the_chosen_labels_audited(member_client, workspace, rich_customer):
    label(workspace, "discount")
    response = member_client.post(
        page(),
        {"action": "save", "key": "tuesday", **FRESH, "labels": "value_proposition:discount"},
    )
    assert response.status_code == 302
    saved = Message.objects.for_workspace(workspace).get(key="tuesday")
    assert [str(x.slug) for x in saved.labels.all()] == ["discount"]
    assert (
        AuditEntry.objects.for_workspace(workspace)
        .filter(object_repr__contains="tuesday", actor="marketer")
        .exists()
    )


def test_it_shows_a_refused_save_beside_its_field(member_client, workspace, rich_customer):
    response = member_client.post(
        page(), {"action": "save", "key": "x", **FRESH, "labels": "value_proposition:nope"}
    )
    assert response.status_code == 200
    assert "Labels: No such label in this workspace: value_proposition:nope." in (
        response.content.decode()
    )
    assert not Message.objects.for_workspace(workspace).filter(key="x").exists()


def test_it_says_plainly_when_no_llm_is_configured(member_client, workspace, rich_customer):
    label(workspace, "discount")
    response = member_client.get(page())
    assert "No LLM is configured" in response.content.decode()
    drafted = member_client.post(
        page(), {"action": "draft", "brief": "value_proposition:discount", "count": 1}
    )
    assert "The LLM is unavailable: No LLM is configured" in drafted.content.decode()


def test_viewers_can_neither_draft_nor_save(viewer_client, workspace, rich_customer, fake_llm):
    label(workspace, "discount")
    assert viewer_client.get(page()).status_code == 200
    drafted = viewer_client.post(
        page(), {"action": "draft", "brief": "value_proposition:discount", "count": 1}
    )
    saved = viewer_client.post(page(), {"action": "save", "key": "x", **FRESH})
    assert (drafted.status_code, saved.status_code) == (403, 403)
    assert fake_llm.requests == []
    assert not Message.objects.for_workspace(workspace).filter(key="x").exists()


def test_it_answers_404_for_an_unknown_customer(member_client, workspace):
    assert member_client.get(page("nobody")).status_code == 404


def test_the_prompt_and_memory_pages_link_to_it(member_client, workspace, rich_customer):
    for name in ("customer-prompt", "customer-detail"):
        html = member_client.get(reverse(name, args=["cust-1"])).content.decode()
        assert f'href="{page()}"' in html
