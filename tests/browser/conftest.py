"""A real headless Chromium (Debian's), driven by Playwright, against a live test server."""

import os
import re
from pathlib import Path

import pytest

# Screenshots of the journeys are kept here as test artifacts (CI keeps the folder).
ARTIFACTS = Path(
    os.environ.get("PRIMER_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(chromium_path, live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop; the ORM calls tests make around it are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="session", autouse=True)
def _release_live_server_connections(django_db_setup, django_db_blocker):
    """Let the test database be dropped: end sessions the live server's threads left open."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection._nodb_cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [connection.settings_dict["NAME"]],
        )


@pytest.fixture
def screenshot(request):
    """Save a full-page screenshot named after the test and the step, under test-artifacts/."""
    folder = ARTIFACTS / "screenshots" / re.sub(r"\W+", "-", request.node.name).strip("-")
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, step: str) -> Path:
        path = folder / f"{step}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take
