import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_logs_in_and_shows_the_demo_labels_and_messages(page, tmp_path):
    call_command("load_demo", "--offers-only", verbosity=0)
    page.goto("/")
    assert "/login/" in page.url
    page.fill("#id_username", "demo")
    page.fill("#id_password", "primer-demo")
    page.click("button[type=submit]")
    page.wait_for_selector("#messages")
    assert page.locator("#messages tbody tr").count() == 10
    bogo_row = page.locator("#labels tr", has=page.locator("code", has_text="bogo"))
    assert "Buy one, get one free" in bogo_row.inner_text()
    page.screenshot(path=tmp_path / "workspace.png", full_page=True)


def test_it_rejects_a_wrong_password(page, make_user):
    make_user("marketer")
    page.goto("/login/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert (
        page.locator(".error").inner_text().startswith("Your user name and password didn't match")
    )
