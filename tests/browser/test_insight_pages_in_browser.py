"""The insight pages in a real browser: every chart drawn by Plotly, nothing fetched from afar."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from campaigns.models import Membership
from memory.services import events_ingest
from tests.browser.support import log_in
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Each page, its charts (by the section they sit in) and its sub-navigation entry.
PAGES = [
    ("Overview", "/insights/", ["#events-per-day", "#data-health"]),
    (
        "Associations",
        "/insights/associations/",
        ["#segment-lift", "#weight-distribution", "#content-gaps"],
    ),
    ("Habituation", "/insights/habituation/", ["#habituation-curve", "#message-map"]),
    ("Priming", "/insights/priming/", ["#priming-lift", "#lead-times"]),
]


@pytest.fixture
def demo_like(workspace, make_user):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    events_ingest(workspace=workspace, payloads=[{"type": "track", "event": "Nobody"}])
    make_user("victor", workspace=workspace, role=Membership.Role.VIEWER)
    return workspace


@pytest.fixture
def requests_seen(page):
    """Every URL the page asks for; anything not on this machine is refused and recorded."""
    seen: list[str] = []

    def only_local(route):
        seen.append(route.request.url)
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_local)
    return seen


def test_every_insight_page_draws_its_charts_from_this_machine_only(
    page, demo_like, requests_seen, screenshot
):
    log_in(page, "victor")
    page.click(".main-nav >> text=Insights")
    for name, path, sections in PAGES:
        page.click(f".sub-nav >> text={name}")
        expect(page).to_have_url(f"{page.url.split('/insights/')[0]}{path}")
        expect(page.locator(".sub-nav [aria-current=page]")).to_have_text(name)
        for section in sections:
            # Plotly drew the figure (its SVG is in the DOM), beside a table with rows.
            expect(page.locator(f"{section} .js-plotly-plot .main-svg").first).to_be_visible()
            assert page.locator(f"{section} .table-side tbody tr").count() >= 1, section
        screenshot(page, name.lower())

    page.goto("/insights/associations/")
    page.select_option("#trait", "plan")  # submits on change
    expect(page.locator("#segment-table")).to_contain_text("gold")
    expect(page.locator("#segment-lift .js-plotly-plot .main-svg").first).to_be_visible()

    page.goto("/customers/c12/")
    expect(page.locator("#timeline .js-plotly-plot .main-svg").first).to_be_visible()
    expect(page.locator("#timeline .js-plotly-plot .scatterlayer .point").first).to_be_attached()
    screenshot(page, "customer")

    assert requests_seen, "the route saw the pages' requests"
    assert {urlsplit(url).hostname for url in requests_seen} <= LOCAL_HOSTS
    assert any(url.endswith("plotly.min.js") for url in requests_seen)


def test_an_empty_workspace_is_shown_how_to_send_its_first_events(page, workspace, make_user):
    make_user("victor", workspace=workspace, role=Membership.Role.VIEWER)
    log_in(page, "victor")
    page.goto("/insights/")
    expect(page.locator("#first-steps")).to_contain_text("/api/v1/events")
    expect(page.locator("#first-steps")).to_contain_text("Segment")
    expect(page.locator("#events-per-day")).to_contain_text("No events yet.")
