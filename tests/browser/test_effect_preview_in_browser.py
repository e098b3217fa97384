"""See a change's effect before making it, in a real Chromium on the Starbucks demo: preview a
boost on the label page (the progress, then the counts, interval, label shifts and a prompt's
diff), then save it: the boost changes and the audit has the change."""

import pytest
from playwright.sync_api import expect

from campaigns.models import AuditEntry, Label
from tests.browser.support import log_in
from tests.browser.test_strategy_in_browser import demo  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_previews_a_boosts_effect_and_then_saves_it(page, demo, screenshot):  # noqa: F811
    label = (
        Label.objects.for_workspace(demo)
        .filter(label_set__slug="value_proposition", active=True, boost=0)
        .order_by("slug")
        .first()
    )
    log_in(page, "editor")
    page.goto(f"/catalogue/labels/{label.pk}/")
    page.fill("#id_boost", "1")
    page.click("#preview-effect")
    result = page.locator("#preview-effect-result")
    expect(result.locator(".preview-headline")).to_contain_text("sampled customers")
    expect(result.locator(".preview-headline")).to_contain_text("95% interval")
    expect(page.locator("#preview-effect-progress")).to_be_hidden()
    expect(result.locator("#preview-effect-shifts")).to_contain_text(label.slug)
    prompts = result.locator("#preview-effect-prompts")
    expect(prompts).to_contain_text("prompts rendered")
    expect(prompts.locator("pre.prompt-diff .added").first).to_be_visible()
    screenshot(page, "01-boost-preview")
    assert Label.objects.for_workspace(demo).get(pk=label.pk).boost == 0  # a preview saves nothing

    page.click("#label-form button[type=submit]")
    expect(page.locator("main")).to_contain_text(f"Saved label {label.slug}")
    assert Label.objects.for_workspace(demo).get(pk=label.pk).boost == 1.0
    entry = AuditEntry.objects.for_workspace(demo).filter(object_type="label").latest("at")
    assert entry.action == "update" and entry.actor == "editor"
    assert entry.before["boost"] == 0 and entry.after["boost"] == 1.0
