"""The catalogue pages in a real Chromium: a near-duplicate shows while typing, suggested
labels apply on a click, and every page renders (screenshots kept as test artifacts)."""
# ruff: noqa: F811 (fixtures imported from the campaigns tests are parameters here)

import pytest

from campaigns.models import Message
from tests.browser.support import log_in
from tests.campaigns.catalogue_support import make_label, make_message
from tests.campaigns.prompt_support import fake_llm  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_warns_of_a_near_duplicate_while_typing_and_applies_suggested_labels(
    page, member, workspace, fake_llm, tmp_path
):
    make_label(workspace, "discount", prompt_phrase="discounts")
    make_label(workspace, "convenience", prompt_phrase="convenience")
    make_message(
        workspace, "spring", "Spring sale", "20% off everything", ["value_proposition:discount"]
    )
    fake_llm.labels = ["value_proposition:convenience"]
    log_in(page)
    page.click(".main-nav >> text=Labels")
    page.wait_for_selector("#set-value_proposition")
    page.screenshot(path=tmp_path / "labels.png", full_page=True)

    page.goto("/catalogue/messages/new/")
    assert page.locator("#near-duplicate-warning").is_hidden()
    page.fill("#id_key", "spring-again")
    page.fill("#id_subject", "Spring sale")
    page.fill("#id_body", "20% off everything!")
    page.wait_for_selector("#near-duplicate-warning", state="visible")
    assert "spring" in page.inner_text("#similar")

    page.fill("#id_body", "Order ahead in the app and skip the line.")
    page.click("#suggest-labels")
    page.click("button.proposal >> text=value_proposition:convenience")
    assert page.locator("input[value='value_proposition:convenience']").is_checked()
    page.screenshot(path=tmp_path / "message_form.png", full_page=True)
    page.click("#message-form button[type=submit]")
    page.wait_for_selector("text=Created spring-again")
    saved = Message.objects.for_workspace(workspace).get(key="spring-again")
    assert [label.slug for label in saved.labels.all()] == ["convenience"]

    page.goto("/catalogue/messages/")
    assert page.locator("#messages tbody tr").count() == 2
    page.screenshot(path=tmp_path / "messages.png", full_page=True)
