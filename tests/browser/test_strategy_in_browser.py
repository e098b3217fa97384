"""Guardrails and overrides in a real Chromium on the Starbucks demo: a frequency cap changes a
customer's next best messages with the reason; a segment's pin shows its provenance on the
customer page and in the prompt."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Label, Membership, Message, Workspace
from memory.models import Customer, CustomerLabelWeight, CustomerNextBest, Event
from memory.next_best import next_best_for
from tests.browser.support import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(settings, make_user):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the demo loads in-process, as `make demo` does
    call_command("load_demo", verbosity=0)
    workspace = Workspace.objects.get(slug="demo")
    make_user("editor", workspace=workspace, role=Membership.Role.EDITOR)
    return workspace


def _a_customer_and_a_label_of_their_top_offer(workspace):
    """Return a customer with a stored list, their top offer, and a value proposition it carries
    that some of their other offers do not."""
    ids = (
        CustomerNextBest.objects.for_workspace(workspace)
        .filter(customer__isnull=False, rank=1)
        .order_by("customer_id")
        .values_list("customer__external_id", flat=True)[:50]
    )
    for external_id in ids:
        offers = next_best_for(workspace=workspace, external_id=external_id, limit=5).offers
        top = Message.objects.for_workspace(workspace).get(pk=offers[0].message_id)
        for label in top.labels.filter(label_set__slug="value_proposition"):
            others = {o.key for o in offers[1:]} - set(label.messages.values_list("key", flat=True))
            if others:
                return external_id, top, label
    raise AssertionError("no customer of the demo fits")


def test_a_frequency_cap_changes_the_next_best_messages_with_the_reason(page, demo, screenshot):
    external_id, top, label = _a_customer_and_a_label_of_their_top_offer(demo)
    # They were sent the top offer a minute ago: one today, the cap's limit.
    Event.objects.create(
        workspace=demo,
        customer=Customer.objects.for_workspace(demo).get(external_id=external_id),
        name=demo.send_event,
        occurred_at=timezone.now() - timedelta(minutes=1),
        message=top,
        message_key=top.key,
        dedup_key="browser-test-send",
    )
    log_in(page, "editor")
    page.goto(f"/customers/{external_id}/")
    expect(page.locator("#next-best tbody tr").first).to_contain_text(top.key)

    page.goto("/guardrails/new/")
    page.fill("#id_name", f"One {label.name} a day")
    page.select_option("#id_kind", "frequency_cap")
    page.select_option("#id_label", str(label.pk))
    page.fill("#id_limit", "1")
    page.select_option("#id_period", "day")
    page.click("#guardrail-form button[type=submit]")
    expect(page.locator("#guardrails")).to_contain_text(f"One {label.name} a day")
    screenshot(page, "01-guardrails")

    page.goto(f"/customers/{external_id}/")
    ranking = page.locator("#next-best table").first
    expect(ranking).not_to_contain_text(top.key)
    excluded = page.locator("#excluded")
    expect(excluded).to_contain_text(top.key)
    expect(excluded).to_contain_text(f"One {label.name} a day")
    expect(excluded).to_contain_text(
        f"at most 1 {label.phrase} messages a day: 1 sent since midnight"
    )
    screenshot(page, "02-customer-capped")


def test_a_segments_pin_shows_its_provenance_on_the_customer_page_and_in_the_prompt(
    page, demo, screenshot
):
    women = Customer.objects.for_workspace(demo).filter(traits__gender="F")
    weights = (
        CustomerLabelWeight.objects.for_workspace(demo)
        .filter(customer__in=women, label__label_set__slug="value_proposition", exposures__gt=0)
        .select_related("customer", "label")
        .order_by("customer_id", "-weight")
    )
    row = weights.first()
    external_id, label = row.customer.external_id, row.label
    log_in(page, "editor")
    page.goto("/overrides/new/")
    page.fill("#id_segment", '{"all": [{"trait": "gender", "equals": "F"}]}')
    page.select_option("#id_label", str(label.pk))
    page.select_option("#id_action", "pin")
    page.fill("#id_value", "0")
    page.fill("#id_note", "Brand test: no such offers to this segment")
    page.click("#override-form button[type=submit]")
    expect(page.locator("#overrides")).to_contain_text('gender = "F"')
    screenshot(page, "01-overrides")

    page.goto(f"/customers/{external_id}/")
    set_text = f"set by editor on {timezone.now():%Y-%m-%d}"  # who and when, as stored (UTC)
    overrides = page.locator("#overrides")
    expect(overrides).to_contain_text(label.name)
    expect(overrides).to_contain_text("never")
    expect(overrides).to_contain_text(set_text)
    pinned = page.locator(f"#associative tr[data-label='{label.slug}'] .provenance")
    expect(pinned).to_contain_text(f'never, {set_text} for gender = "F"')
    learned = page.locator("#associative .provenance.learned").first
    expect(learned).to_contain_text("learned from")
    screenshot(page, "02-customer")

    page.goto(f"/prompts/customers/{external_id}/")
    expect(page.locator("body")).to_contain_text(f"never {label.phrase} ({set_text}")
    screenshot(page, "03-prompt")
    assert Label.objects.for_workspace(demo).get(pk=label.pk).overrides.count() == 1
