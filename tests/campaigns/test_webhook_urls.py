"""Webhook URLs are parsed strictly on save, and a delivery connects to the address it checked."""

import socket
import ssl

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from campaigns.models import Webhook, WebhookDelivery
from campaigns.webhooks.services import (
    webhook_create,
    webhook_delivery_attempt,
    webhook_ping_create,
)
from tests.campaigns.config_support import api

pytestmark = pytest.mark.django_db

MALFORMED = [
    "http://user:secret@crm.example/hook",  # credentials
    "https://token@crm.example/hook",
    "http://crm.example:99999/hook",  # no such port
    "http://crm.example:0/hook",
    "http://crm.example:8o/hook",
    "https://crm.example/a b",  # whitespace
    "https://crm.example/a\tb",
    "https://crm.example/a\nb",
    "https://crm.example/\x7f",
    "https://crm.example/hook#part",
    "ftp://crm.example/hook",
    "javascript:alert(1)",
    "http:///hook",
    "http://",
    "//crm.example/hook",
    "http://[::1/hook",
    "https://crm..example/hook",
    "crm.example/hook",
    "",
    "https://" + "a" * 500 + ".example/",
]
WELL_FORMED = [
    "https://crm.example/primer?tenant=7",
    "http://127.0.0.1:8080/hook",
    "https://[2001:db8::1]:8443/hook",
    "https://bücher.example/hook",
]


@pytest.mark.parametrize("url", MALFORMED)
def test_the_service_refuses_a_malformed_url_naming_the_field(workspace, url):
    with pytest.raises(ValidationError) as refused:
        webhook_create(workspace=workspace, url=url)
    assert "url" in refused.value.message_dict


@pytest.mark.parametrize("url", WELL_FORMED)
def test_it_accepts_well_formed_urls(workspace, url):
    assert webhook_create(workspace=workspace, url=url).url == url


def test_the_api_answers_400_for_each_malformed_url(client, config_key, workspace):
    for url in MALFORMED:
        created = api(client, "post", "/api/v1/webhooks", config_key, {"url": url})
        assert created.status_code == 400 and "url" in created.json(), (url, created.content)
    hook = webhook_create(workspace=workspace, url="https://crm.example/hook")
    for url in MALFORMED:
        patched = api(
            client, "patch", f"/api/v1/webhooks/{hook.pk}", config_key, {"url": url, "version": 1}
        )
        assert patched.status_code == 400 and "url" in patched.json(), url
    assert Webhook.objects.for_workspace(workspace).count() == 1


def test_the_page_shows_the_error_beside_the_field(member_client, workspace):
    # The form completes a URL typed without its scheme as https (its own convenience).
    for url in set(MALFORMED) - {"//crm.example/hook", "crm.example/hook"}:
        page = member_client.post(reverse("webhooks"), {"url": url})
        assert page.status_code == 200, url
        assert 'id="field-url"' in page.content.decode() or "errorlist" in page.content.decode()
    assert not Webhook.objects.for_workspace(workspace).exists()


def test_a_malformed_url_stored_earlier_fails_its_delivery_without_an_error(workspace):
    hook = webhook_create(workspace=workspace, url="https://crm.example/hook")
    Webhook.objects.for_workspace(workspace).filter(pk=hook.pk).update(
        url="http://user:pw@crm.example:99999/hook"
    )
    delivery = webhook_ping_create(webhook=Webhook.objects.for_workspace(workspace).get())
    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (attempt.retry, delivery.status) == (False, WebhookDelivery.Status.FAILED)
    assert delivery.error.startswith("Refused: the stored URL is malformed")


@pytest.fixture
def rebinding_dns(monkeypatch):
    """A name that first resolves to a public address, then to loopback (DNS rebinding)."""
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    lookups = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 80))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.fixture
def connections(monkeypatch):
    """Record where each delivery connects, and refuse it (nothing leaves the machine)."""
    seen = []

    def create_connection(address, *args, **kwargs):
        seen.append(address)
        raise ConnectionRefusedError("refused by the test")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return seen


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_delivery_connects_to_the_address_it_checked(
    workspace, settings, rebinding_dns, connections, scheme
):
    settings.PRIMER_WEBHOOK_ALLOW_PRIVATE_URLS = False
    hook = webhook_create(workspace=workspace, url=f"{scheme}://rebind.example:8443/hook")
    delivery = webhook_ping_create(webhook=hook)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    assert rebinding_dns == ["rebind.example"]  # resolved once
    assert connections == [("93.184.216.34", 8443)]  # the checked address, not a new lookup
    delivery.refresh_from_db()
    assert "refused by the test" in delivery.error


def test_https_names_the_urls_host_for_sni_and_the_certificate(workspace, settings, monkeypatch):
    settings.PRIMER_WEBHOOK_ALLOW_PRIVATE_URLS = True
    names = []

    def create_connection(address, *args, **kwargs):
        ours, theirs = socket.socketpair()
        theirs.close()
        return ours

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
        names.append((server_hostname, self.check_hostname, self.verify_mode))
        sock.close()
        raise ssl.SSLError("handshake refused by the test")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", wrap_socket)
    hook = webhook_create(workspace=workspace, url="https://localhost:9/hook")
    webhook_delivery_attempt(delivery_id=webhook_ping_create(webhook=hook).pk)
    assert names and names[0] == ("localhost", True, ssl.CERT_REQUIRED)
