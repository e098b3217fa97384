"""An owner deletes a customer on their page, their events are refused, then accepted again."""

import pytest

from campaigns.models import Membership
from campaigns.tenancy.services import api_key_create
from memory.models import Customer
from tests.campaigns.prompt_support import customer, event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def send(page, key: str, n: int) -> dict:
    """POST one event for 'ann' to the native endpoint, as a sender would."""
    answer = page.request.post(
        "/api/v1/events",
        data=[{"userId": "ann", "event": "Order Completed", "messageId": f"ann-{n}"}],
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status == 200
    return answer.json()["results"][0]


def test_an_owner_deletes_with_suppression_and_lifts_it(page, workspace, make_user):
    event(customer(workspace, "ann"), "Order Completed", 2)
    _, key = api_key_create(workspace=workspace, scopes=["write"], name="sender")
    make_user("boss", workspace=workspace, role=Membership.Role.OWNER)
    page.goto("/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")

    page.goto("/customers/ann/")
    assert page.locator("#delete-form input[name=suppress]").is_checked()  # ticked by default
    page.fill("#delete-form input[name=confirm]", "ann")
    page.click("#delete-form button[type=submit]")
    page.wait_for_selector("text=Their later events will be refused.")

    refused = send(page, key, 1)
    assert (refused["status"], refused["field"]) == ("rejected", "userId")
    assert not Customer.objects.for_workspace(workspace).filter(external_id="ann").exists()

    page.click("#suppressions-link")
    page.fill("#suppression-check input[name=id]", "ann")
    page.click("#suppression-check button[type=submit]")
    assert "is suppressed" in page.locator("#suppression-status").inner_text()
    page.click("#suppression-lift-form button[type=submit]")
    page.wait_for_selector("text=accepted again")
    assert "0 ids suppressed" in page.locator("#suppression-count").inner_text()

    assert send(page, key, 2)["status"] == "stored"
    assert Customer.objects.for_workspace(workspace).filter(external_id="ann").exists()
