"""Privacy: export one customer's data, or delete all of it in one transaction, audited."""

import json

import pytest
from django.core.management import call_command
from django.db import models
from django.urls import reverse
from django.utils import timezone

from campaigns.models import AuditEntry, Membership, WebhookDelivery, WebhookPromptHash
from campaigns.tenancy.services import api_key_create
from campaigns.webhooks.services import (
    webhook_create,
    webhook_deliveries_for_changed_prompts,
    webhook_set_active,
)
from config.customer_urls import customer_url
from memory.models import Customer, CustomerLabelWeight, CustomerState, Event
from memory.privacy import customer_erase
from tests.campaigns.prompt_support import customer, event, remember, rich_customer  # noqa: F401

pytestmark = pytest.mark.django_db


def cascading_tables() -> list[type[models.Model]]:
    return [
        relation.related_model
        for relation in Customer._meta.related_objects
        if relation.on_delete is models.CASCADE
    ]


def rows_of(external_id: str) -> dict[str, int]:
    """Rows referring to the customer, per table that cascades from Customer."""
    return {
        model._meta.label_lower: model.unscoped.filter(customer__external_id=external_id).count()
        for model in cascading_tables()
    }


@pytest.fixture
def two_customers(workspace, rich_customer):  # noqa: F811
    """cust-1 (memory in every derived table) and cust-2, both in one pending delivery."""
    other = customer(workspace, "cust-2", {"plan": "free"})
    remember(other)
    event(other, "Order Completed", 3)
    webhook_create(workspace=workspace, url="https://crm.example/hook")
    paused = webhook_create(workspace=workspace, url="https://paused.example/hook")
    webhook_deliveries_for_changed_prompts(workspace_id=workspace.pk)
    first = Customer.objects.for_workspace(workspace).get(external_id="cust-1")
    WebhookPromptHash.objects.create(
        workspace=workspace,
        webhook=paused,
        customer=first,
        content_hash="x" * 64,
        delivered_at=timezone.now(),
    )
    webhook_set_active(webhook=paused, active=False)
    return rich_customer


def test_it_deletes_every_row_about_the_customer_and_only_theirs(workspace, two_customers):
    before = rows_of("cust-1")
    assert all(before[m._meta.label_lower] for m in (Event, CustomerLabelWeight, CustomerState))
    assert before["campaigns.webhookprompthash"] == 1
    others = rows_of("cust-2")

    erased = customer_erase(workspace=workspace, external_id="cust-1", actor=_system())

    assert not Customer.objects.for_workspace(workspace).filter(external_id="cust-1").exists()
    assert set(rows_of("cust-1").values()) == {0}
    assert rows_of("cust-2") == others
    assert erased.rows["memory.event"] == before["memory.event"]
    entry = AuditEntry.objects.for_workspace(workspace).get(action="delete")
    assert (entry.object_type, entry.object_repr) == ("customer", "cust-1")
    assert entry.before["memory.event"] == before["memory.event"]


def test_it_erases_their_prompts_from_the_webhook_log_and_tells_active_webhooks(
    workspace, two_customers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        customer_erase(workspace=workspace, external_id="cust-1", actor=_system())
    deliveries = WebhookDelivery.objects.for_workspace(workspace)
    changed = deliveries.filter(event="prompts.changed")
    assert len(changed) == 2  # one per webhook, the paused one's included
    for delivery in changed:
        body = json.loads(delivery.body)
        assert [p["customer_id"] for p in body["prompts"]] == ["cust-2"]
        assert "cust-1" not in delivery.body and delivery.prompt_count == 1
        assert len(delivery.hashes) == 1
    (told,) = deliveries.filter(event="customer.deleted")  # the paused webhook is not told
    assert told.webhook.url == "https://crm.example/hook"
    assert json.loads(told.body)["customer_id"] == "cust-1"
    assert len(queued) == 1  # its delivery is queued once the deletion commits


def test_it_deletes_nothing_if_any_part_fails(workspace, two_customers, monkeypatch):
    before = rows_of("cust-1")

    def broken(**kwargs):
        raise RuntimeError("audit down")

    monkeypatch.setattr("memory.privacy.audit_record", broken)
    with pytest.raises(RuntimeError):
        customer_erase(workspace=workspace, external_id="cust-1", actor=_system())
    assert rows_of("cust-1") == before
    assert not WebhookDelivery.objects.for_workspace(workspace).filter(event="customer.deleted")


def _system():
    from campaigns.tenancy.changes import Actor

    return Actor.system("test")


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_the_api_exports_and_deletes_with_the_right_scopes(
    client, workspace, other_workspace, two_customers
):
    _, read = api_key_create(workspace=workspace, scopes=["read"], name="reader")
    _, write = api_key_create(workspace=workspace, scopes=["write"], name="writer")
    _, theirs = api_key_create(workspace=other_workspace, scopes=["read", "write"], name="them")
    url = "/api/v1/customers/cust-1/data"
    exported = client.get(url, **bearer(read))
    assert exported.status_code == 200
    data = exported.json()
    assert data["customer"]["external_id"] == "cust-1"
    assert data["customer"]["traits"]["name"] == "Ann"
    assert {table._meta.label_lower for table in cascading_tables()} == set(data["tables"])
    assert len(data["tables"]["memory.event"]) == rows_of("cust-1")["memory.event"]
    audited = AuditEntry.objects.for_workspace(workspace).get(action="export")
    assert audited.actor.startswith("API key reader")
    assert client.get(url, **bearer(theirs)).status_code == 404
    assert client.delete(url, **bearer(read)).status_code == 403
    assert client.delete(url, **bearer(theirs)).status_code == 404
    deleted = client.delete(url, **bearer(write))
    assert deleted.status_code == 200 and deleted.json()["customer"] == "cust-1"
    assert deleted.json()["deleted"]["memory.event"] > 0
    assert client.delete(url, **bearer(write)).status_code == 404
    assert client.get(url, **bearer(read)).status_code == 404


def test_an_odd_id_is_exported_and_deleted_over_the_api(client, workspace):
    odd = customer(workspace, "a/../b?#%")
    event(odd, "Order Completed", 2)
    _, key = api_key_create(workspace=workspace, scopes=["read", "write"], name="k")
    url = "/api/v1" + customer_url("customer-detail", odd.external_id).rstrip("/") + "/data"
    assert client.get(url, **bearer(key)).json()["customer"]["external_id"] == "a/../b?#%"
    assert client.delete(url, **bearer(key)).status_code == 200
    assert not Customer.objects.for_workspace(workspace).exists()


def test_owners_delete_from_the_page_editors_export_viewers_neither(
    client, make_user, workspace, two_customers
):
    export_url = customer_url("customer-export", "cust-1")
    delete_url = customer_url("customer-delete", "cust-1")
    client.force_login(make_user("vic", workspace=workspace, role=Membership.Role.VIEWER))
    assert (
        'id="privacy"' not in client.get(customer_url("customer-detail", "cust-1")).content.decode()
    )
    assert client.get(export_url).status_code == 403
    assert client.post(delete_url, {"confirm": "cust-1"}).status_code == 403

    client.force_login(make_user("ed", workspace=workspace, role=Membership.Role.EDITOR))
    page = client.get(customer_url("customer-detail", "cust-1")).content.decode()
    assert 'id="export-link"' in page and 'id="delete-form"' not in page
    exported = client.get(export_url)
    assert exported.status_code == 200 and "attachment" in exported["Content-Disposition"]
    assert json.loads(exported.content)["customer"]["external_id"] == "cust-1"
    assert client.post(delete_url, {"confirm": "cust-1"}).status_code == 403

    client.force_login(make_user("own", workspace=workspace, role=Membership.Role.OWNER))
    assert (
        'id="delete-form"' in client.get(customer_url("customer-detail", "cust-1")).content.decode()
    )
    unconfirmed = client.post(delete_url, {"confirm": "cust-2"}, follow=True)
    assert "Type the customer&#x27;s id" in unconfirmed.content.decode()
    assert Customer.objects.for_workspace(workspace).filter(external_id="cust-1").exists()
    done = client.post(delete_url, {"confirm": "cust-1"})
    assert done.status_code == 302 and done["Location"] == reverse("customer-list")
    assert not Customer.objects.for_workspace(workspace).filter(external_id="cust-1").exists()
    assert AuditEntry.objects.for_workspace(workspace).get(action="delete").actor == "own"


def test_the_commands_export_and_delete(workspace, two_customers, tmp_path, capsys):
    out = tmp_path / "cust-1.json"
    call_command("export_customer", "cust-1", workspace="acme", out=str(out))
    assert json.loads(out.read_text())["customer"]["external_id"] == "cust-1"
    call_command("delete_customer", "cust-1", workspace="acme")
    assert "Deleted 'cust-1'" in capsys.readouterr().out
    assert set(rows_of("cust-1").values()) == {0}
    assert WebhookDelivery.objects.for_workspace(workspace).filter(event="customer.deleted")
