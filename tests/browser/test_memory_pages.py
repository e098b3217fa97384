"""The memory pages in a real browser: charts drawn, live recompute status, scoped data."""

import pytest

from campaigns.models import Membership
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def logged_in(page, workspace, make_user):
    make_user("analyst", workspace=workspace, role=Membership.Role.EDITOR)
    page.goto("/login/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_selector("#labels")
    return page


def axis_titles(figure) -> list[str]:
    """The axis titles Plotly drew in a figure (it drops a title it cannot read, silently)."""
    return figure.locator(".xtitle, .ytitle").all_text_contents()


def test_it_draws_a_customers_memory(logged_in, workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    page = logged_in
    failed = []
    page.on(
        "response", lambda response: failed.append(response.url) if response.status >= 400 else None
    )
    page.goto("/customers/?q=c1")
    page.click("#customers a >> text=c12")
    page.wait_for_selector("#associative .figure .main-svg")
    assert page.locator("#associative .figure").count() == 2  # offer and tone
    assert page.locator("#habituation tbody tr").count() >= 1
    assert page.locator("#next-best tbody tr").count() == 5
    page.click("#prompt-link")  # the memory beside the prompt it writes, both ways
    page.wait_for_selector("#memory-link")
    assert "Prompt of c12" in page.locator("h1").inner_text()
    page.click("#memory-link")
    page.wait_for_selector("#associative .figure .main-svg")
    assert axis_titles(page.locator("#associative .figure").first) == [
        "P(goal within the window after a send)"
    ]
    page.goto("/memory/")
    page.wait_for_selector("#priming .figure .main-svg")
    page.wait_for_selector("#habituation-curve .figure .main-svg")
    assert "Product Viewed" in page.locator("#priming table").inner_text()
    assert axis_titles(page.locator("#priming .figure")) == [
        "odds ratio of the goal soon after (log scale)"
    ]
    assert axis_titles(page.locator("#habituation-curve .figure")) == [
        "habituation load H at the send",
        "rate",
    ]
    page.wait_for_selector("#scoring-model .figure .main-svg")
    model = page.locator("#model-features").inner_text()
    assert "baseline" in model and "how likely they reach the goal" in model
    assert page.locator("#model-features tbody tr").count() >= 5
    assert axis_titles(page.locator("#scoring-model .figure")) == [
        "odds of the goal, times, for one standard deviation more"
    ]
    assert page.locator("#replay-levels tbody tr").count() >= 3  # the weeks it learned from
    assert "discount" in page.locator("#average-customer table").inner_text()
    assert failed == []  # every script and style sheet the pages asked for was there
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(icon).headers["content-type"] == "image/svg+xml"


def test_it_recomputes_from_the_page(logged_in, workspace, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # in-process, as in the demo, even beside Redis
    load_synthetic(workspace, customers=30, events=3_000)
    page = logged_in
    page.goto("/memory/")
    assert "No recompute yet" in page.locator("#recompute").inner_text()
    page.click("button[value=full]")
    page.wait_for_selector(".flash li")
    assert "finished" in page.locator(".flash").inner_text()
    assert "succeeded" in page.locator("#recompute table").inner_text()
