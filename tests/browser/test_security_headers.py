"""Every page works under the Content-Security-Policy: charts, scripts and the API docs."""

import pytest

from campaigns.models import Membership
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def watched(page, workspace, make_user):
    """A logged-in page that records every CSP violation the browser reports."""
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    make_user("analyst", workspace=workspace, role=Membership.Role.EDITOR)
    page.goto("/login/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_selector("#labels")
    return page, violations


def test_it_draws_every_chart_under_the_policy(watched, workspace):
    load_synthetic(workspace, customers=30, events=3_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    page, violations = watched
    response = page.goto("/memory/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "camera=()" in response.headers["permissions-policy"]
    page.wait_for_selector("#priming .figure .main-svg")
    page.goto("/customers/c1/")
    page.wait_for_selector("#associative .figure .main-svg")
    assert violations == []


def test_it_switches_workspace_without_an_inline_handler(watched, make_workspace, make_user):
    page, violations = watched
    make_user("analyst", workspace=make_workspace("second", name="Second"))
    page.goto("/")
    with page.expect_navigation():
        page.select_option("#workspace-switcher", label="Second (editor)")
    assert page.locator("#workspace-switcher option:checked").inner_text() == "Second (editor)"
    assert violations == []


def test_it_serves_the_api_docs_under_the_policy(watched):
    page, violations = watched
    page.goto("/api/docs/")
    page.wait_for_selector("#swagger-ui .info")
    assert violations == []
    page.goto("/api/redoc/")
    page.wait_for_selector(".menu-content")
    # What Redoc asks of other hosts (web fonts, its logo) stays blocked: nothing leaves.
    assert [text for text in violations if "https://" not in text] == []
