"""An editor reads a campaign's uplift as last counted, and counts it again from the page."""

import pytest

from campaigns.models import Membership
from memory.models import Decision
from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM
from tests.browser.support import log_in
from tests.campaigns.prompt_support import customer, message
from tests.memory.decision_support import decide, holdout_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_editor_counts_the_campaigns_decisions_from_its_uplift_page(
    page, workspace, make_user, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # in-process, as in the demo
    offers = [message(workspace, f"m{i}", f"Offer {i}") for i in range(2)]
    campaign = holdout_campaign(workspace, offers)
    arms = (PRIMER, RANDOM, NO_MEMORY)
    Decision.objects.bulk_create(
        decide(
            workspace,
            campaign,
            customer(workspace, f"c{i}"),
            arms[i % 3],
            offers[i % 2],
            offers[0],
            goal=i % 2 == 0,
            revenue=None,
        )
        for i in range(12)
    )
    make_user("ed", workspace=workspace, role=Membership.Role.EDITOR)
    log_in(page, "ed")

    page.goto("/campaigns/spring/uplift/")
    assert "Not counted yet" in page.locator("#uplift-counted").inner_text()
    assert page.locator("tr[data-arm=primer] td").nth(2).inner_text() == "0"  # served

    page.click("#match-now")
    page.wait_for_selector("text=Matched and counted")

    assert "Counted " in page.locator("#uplift-counted").inner_text()
    assert page.locator("tr[data-arm=primer] td").nth(2).inner_text() == "4"
    assert "2 of 4" in page.locator("tr[data-arm=primer]").inner_text()  # resolved goals
