"""Steps the browser tests share."""

PASSWORD = "correct horse battery"  # every test user's (tests/conftest.py, make_user)


def log_in(page, username: str = "marketer") -> None:
    """Sign in through the login page and wait for the navigation of a signed-in page."""
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".main-nav")
