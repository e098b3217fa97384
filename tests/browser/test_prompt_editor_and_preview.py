"""The template editor and a customer's preview page in a real Chromium."""
# ruff: noqa: F811 (fixtures imported from the campaigns tests are parameters here)

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import PromptTemplate
from tests.browser.support import log_in
from tests.campaigns.prompt_support import fake_llm, rich_customer  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_edits_saves_diffs_and_reverts_a_template(page, member, workspace, rich_customer):
    log_in(page)
    page.click("text=Templates")
    page.click("a[href='/prompts/templates/default/']")
    # The live render shows the first customer's prompt from the built-in text.
    expect(page.locator("#render-output")).to_contain_text("convenience")

    editor = page.locator("#template-form textarea")
    editor.fill("Customer {{ customer.id }} likes {{ label_sets.0.labels.0.phrase }}.")
    expect(page.locator("#render-output")).to_contain_text('Customer "cust-1" likes convenience.')
    page.fill("input[name=note]", "terse")
    page.click("#save-template")
    page.wait_for_selector("text=Saved version 1.")

    editor = page.locator("#template-form textarea")
    editor.fill("Customer {{ customer.id }} prefers {{ label_sets.0.labels.0.phrase }}.")
    page.click("#save-template")
    page.wait_for_selector("text=Saved version 2.")
    assert page.locator("#versions tbody tr").count() == 2

    page.click("#versions tr[data-version='2'] .diff-link")
    diff = page.locator("#diff")
    assert "Changes from v1 to v2" in diff.inner_text()
    assert "} likes {" in diff.locator(".removed").inner_text()
    assert "} prefers {" in diff.locator(".added").inner_text()

    page.click("#versions tr[data-version='1'] button.revert")
    page.wait_for_selector("text=Reverted to v1: saved as version 3.")
    assert re.search(r"likes", page.locator("#template-form textarea").input_value())
    template = PromptTemplate.objects.for_workspace(workspace).get(slug="default")
    assert [v.number for v in template.versions.order_by("number")] == [1, 2, 3]
    assert template.current_version.text == template.versions.get(number=1).text


def test_it_previews_a_customers_prompt_with_the_llm_side_by_side(
    page, member, rich_customer, fake_llm
):
    log_in(page)
    page.goto("/prompts/customers/")
    page.click("text=cust-1")
    assert "responds to convenience (strong evidence)" in page.inner_text("#prompt-text")
    page.fill("#id_question", "Which laptop suits me?")
    page.click("#ask")
    page.wait_for_selector("#answer-personalized")
    assert "GENERIC ANSWER" in page.inner_text("#answer-generic")
    assert "PERSONAL ANSWER" in page.inner_text("#answer-personalized")
    (system,) = fake_llm.system_prompts()
    assert system == page.inner_text("#prompt-text").strip() + "\n"


def test_it_shows_the_llms_failure_in_the_page(page, member, rich_customer, fake_llm):
    fake_llm.mode = "timeout"
    log_in(page)
    page.goto("/prompts/customers/cust-1/")
    page.click("#ask")
    error = page.wait_for_selector("#llm-error")
    assert "did not answer within 1 s" in error.inner_text()
