"""The prompt pages: templates and versions, a customer's prompt and preview, drafts, webhooks."""

import pytest
from django.urls import reverse

from campaigns.models import Membership, Message, PromptTemplate, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client, make_user, workspace):
    client.force_login(make_user("watcher", workspace=workspace, role=Membership.Role.VIEWER))
    return client


def template_url(slug="default"):
    return reverse("prompt-template", args=[slug])


def test_it_sends_anonymous_visitors_to_login(client, db):
    for name in ("prompt-templates", "prompt-customers", "message-drafts", "webhooks"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_shows_the_built_in_default_before_any_save(member_client):
    page = member_client.get(reverse("prompt-templates")).content.decode()
    assert "v0 (Primer's built-in)" in page
    page = member_client.get(template_url()).content.decode()
    assert "Treat this person as an" in page
    assert "Saving makes version 1" in page


def test_it_saves_versions_shows_a_diff_and_reverts(member_client, workspace):
    member_client.post(template_url(), {"text": "Hello {{ customer.id }}", "note": "first"})
    member_client.post(template_url(), {"text": "Hi {{ customer.id }}", "note": "shorter"})
    template = PromptTemplate.objects.for_workspace(workspace).get(slug="default")
    assert [v.number for v in template.versions.order_by("number")] == [1, 2]
    page = member_client.get(template_url() + "?diff=2").content.decode()
    assert "Changes from v1 to v2" in page
    assert '<span class="removed">-Hello {{ customer.id }}</span>' in page
    assert '<span class="added">+Hi {{ customer.id }}</span>' in page
    response = member_client.post(reverse("prompt-template-revert", args=["default", 1]))
    assert response.status_code == 302
    assert template.current_version.number == 3
    assert template.current_version.text == "Hello {{ customer.id }}"


def test_it_refuses_a_template_that_does_not_compile(member_client, workspace):
    response = member_client.post(template_url(), {"text": "{% if %}"})
    assert response.status_code == 200
    assert "Template syntax error" in response.content.decode()
    assert not PromptTemplate.objects.for_workspace(workspace).exists()


def test_it_renders_unsaved_text_live_for_a_chosen_customer(member_client, rich_customer):
    url = reverse("prompt-template-render", args=["default"])
    response = member_client.post(url, {"text": "Hi {{ customer.id }}", "customer": "cust-1"})
    assert response.json()["prompt"] == 'Hi "cust-1"\n'
    assert response.json()["memory_at"] == "2026-03-10T12:00:00Z"
    assert member_client.post(url, {"text": "{% for %}", "customer": "cust-1"}).status_code == 422
    assert member_client.post(url, {"text": "x", "customer": "nobody"}).status_code == 404


def test_it_lets_viewers_look_but_not_change(viewer_client, workspace, rich_customer):
    assert viewer_client.get(template_url()).status_code == 200
    assert viewer_client.post(template_url(), {"text": "Mine"}).status_code == 403
    assert viewer_client.post(reverse("prompt-template-new"), {"slug": "x"}).status_code == 403
    assert viewer_client.post(reverse("webhooks"), {"url": "https://x.example/"}).status_code == 403
    assert not PromptTemplate.objects.for_workspace(workspace).exists()
    assert "Save as a new version" not in viewer_client.get(template_url()).content.decode()


def test_it_shows_a_customers_prompt_and_both_answers_side_by_side(
    member_client, rich_customer, fake_llm
):
    url = reverse("customer-prompt", args=["cust-1"])
    page = member_client.get(url).content.decode()
    assert "responds to convenience (strong evidence)" in page
    assert "v0" in page
    response = member_client.post(url, {"question": "Which laptop?"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "GENERIC ANSWER for anyone" in page
    assert "PERSONAL ANSWER for a known customer" in page
    assert len(fake_llm.system_prompts()) == 1


def test_it_says_clearly_when_the_llm_fails_on_the_page(member_client, rich_customer, fake_llm):
    fake_llm.mode = "500"
    page = member_client.post(reverse("customer-prompt", args=["cust-1"]), {"question": "q"})
    assert page.status_code == 200
    assert "The LLM is unavailable: The LLM server answered with HTTP 500." in page.content.decode()


def test_it_says_when_no_llm_is_configured(member_client, rich_customer, settings):
    settings.PRIMER_LLM_BASE_URL = None
    page = member_client.get(reverse("customer-prompt", args=["cust-1"])).content.decode()
    assert "No LLM is configured" in page


def test_it_lists_and_searches_customers(member_client, rich_customer):
    page = member_client.get(reverse("prompt-customers") + "?q=cust").content.decode()
    assert reverse("customer-prompt", args=["cust-1"]) in page
    assert (
        "cust-1" not in member_client.get(reverse("prompt-customers") + "?q=zzz").content.decode()
    )


def test_it_drafts_messages_and_saves_one_with_its_label(
    member_client, workspace, rich_customer, fake_llm
):
    from campaigns.models import Label

    discount = Label.objects.for_workspace(workspace).get(slug="discount")
    fake_llm.drafts = [{"subject": "Half price", "body": "Everything at half price today."}]
    page = member_client.post(
        reverse("message-drafts"), {"action": "propose", "label": discount.pk, "count": 1}
    ).content.decode()
    assert "Half price" in page
    assert "habituation risk" in page
    response = member_client.post(
        reverse("message-drafts"),
        {
            "action": "save",
            "label": discount.pk,
            "key": "half-price",
            "subject": "Half price",
            "body": "Everything at half price today.",
        },
    )
    assert response.status_code == 302
    saved = Message.objects.for_workspace(workspace).get(key="half-price")
    assert list(saved.labels.all()) == [discount]


def test_it_registers_a_webhook_and_shows_its_delivery_log(
    member_client, workspace, receiver, django_capture_on_commit_callbacks
):
    from tests.campaigns.test_webhook_delivery import documented_verify

    response = member_client.post(reverse("webhooks"), {"url": receiver.url + "/in"})
    hook = Webhook.objects.for_workspace(workspace).get()
    assert response["Location"] == reverse("webhook", args=[hook.pk])
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            member_client.post(reverse("webhook-action", args=[hook.pk]), {"action": "test"})
    finally:
        app.conf.task_always_eager = before
    (request,) = receiver.requests
    assert documented_verify(hook.secret, request["raw"], request["headers"]["x-primer-signature"])
    page = member_client.get(reverse("webhook", args=[hook.pk])).content.decode()
    assert hook.secret in page
    assert "Succeeded" in page and "<td>200</td>" in page
    assert WebhookDelivery.objects.for_workspace(workspace).get().attempts == 1
