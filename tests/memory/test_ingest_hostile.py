"""Hostile requests to the ingestion endpoints: a clear answer, and nothing written by them."""

import json

import pytest
from django.test import Client

from memory.models import Event

pytestmark = pytest.mark.django_db

TRACK = {"userId": "u1", "event": "Signed Up", "messageId": "m-1"}


@pytest.fixture
def browser(member):
    """A browser logged in to Primer, as a cross-site form post would find it: CSRF enforced."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    return client


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", TRACK),
        ("/v1/page", {"userId": "u1", "name": "Home"}),
        ("/v1/batch", {"batch": [{"type": "track", **TRACK}]}),
    ],
)
def test_it_ignores_the_browser_session_on_the_segment_endpoints(browser, workspace, path, body):
    response = browser.post(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 401
    assert not Event.objects.for_workspace(workspace).exists()


def test_it_refuses_a_session_write_to_the_native_endpoint_without_a_csrf_token(browser, workspace):
    response = browser.post(
        "/api/v1/events", data=json.dumps([TRACK]), content_type="application/json"
    )
    assert response.status_code == 403
    assert not Event.objects.for_workspace(workspace).exists()


def test_it_still_takes_the_key_on_the_segment_endpoints(browser, write_key, workspace):
    body = {"writeKey": write_key, **TRACK}
    response = browser.post("/v1/track", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert Event.objects.for_workspace(workspace).count() == 1
