"""An editor reads a campaign's uplift as last counted, and counts it again from the page."""

import pytest

from campaigns.models import Membership
from memory.models import Decision
from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM
from tests.browser.support import log_in
from tests.campaigns.prompt_support import customer, message
from tests.memory.decision_support import decide, holdout_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def served_campaign(workspace):
    """A campaign with a holdout and twelve decisions served (four in Primer's arm, two of them
    followed by the goal), not counted yet."""
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


def test_an_editor_counts_the_campaigns_decisions_from_its_uplift_page(
    page, workspace, make_user, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # in-process, as in the demo
    served_campaign(workspace)
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


def test_with_workers_the_page_follows_the_count_until_it_is_done(
    page, workspace, make_user, settings, celery_workers
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    served_campaign(workspace)
    make_user("ed", workspace=workspace, role=Membership.Role.EDITOR)
    log_in(page, "ed")
    page.goto("/campaigns/spring/uplift/")

    page.click("#match-now")
    assert "queued on the workers" in page.locator(".flash").inner_text()
    assert page.locator("#uplift-counting").is_visible()  # no worker yet: it waits
    celery_workers.start()

    page.wait_for_selector("#uplift-counting", state="detached", timeout=60_000)
    assert page.locator("#uplift-counted").inner_text().startswith("Counted ")
    assert page.locator("tr[data-arm=primer] td").nth(2).inner_text() == "4"
