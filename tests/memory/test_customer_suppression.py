"""Suppression: a customer erased at their request is not created again by later events."""

import json
import threading
import time
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.urls import reverse

from campaigns.models import AuditEntry, Membership, WebhookDelivery
from campaigns.tenancy.changes import Actor
from campaigns.tenancy.services import api_key_create
from campaigns.webhooks.services import webhook_create
from config.customer_urls import customer_url
from memory.importers.lines import SourceLine
from memory.models import Customer, Event, SuppressedCustomer
from memory.privacy import customer_erase, customer_suppress
from memory.services import events_import, events_ingest
from tests.campaigns.prompt_support import customer, event

pytestmark = pytest.mark.django_db


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def stored(workspace, external_id: str) -> bool:
    return Customer.objects.for_workspace(workspace).filter(external_id=external_id).exists()


def track(user: str, name: str = "Order Completed", n: int = 0) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": name,
        "messageId": f"{user}-{name}-{n}",
        "timestamp": "2026-03-01T10:00:00Z",
    }


@pytest.fixture
def keys(workspace):
    _, read = api_key_create(workspace=workspace, scopes=["read"], name="reader")
    _, write = api_key_create(workspace=workspace, scopes=["read", "write"], name="writer")
    return read, write


def test_erased_with_suppression_their_events_are_refused_one_by_one(
    client, post_json, workspace, keys, basic_auth
):
    _, write = keys
    event(customer(workspace, "ann"), "Order Completed", 2)
    webhook_create(workspace=workspace, url="https://crm.example/hook")

    erased = client.delete("/api/v1/customers/ann/data?suppress=true", **bearer(write))

    assert erased.status_code == 200 and erased.json()["suppressed"] is True
    told = WebhookDelivery.objects.for_workspace(workspace).get(event="customer.deleted")
    assert json.loads(told.body)["suppressed"] is True
    audit = AuditEntry.objects.for_workspace(workspace).get(action="delete")
    assert audit.after == {"suppressed": True}
    # The list keeps a digest, never the id.
    (row,) = SuppressedCustomer.objects.for_workspace(workspace)
    assert "ann" not in row.digest and len(row.digest) == 64

    body = {
        "batch": [
            track("ann"),
            {"type": "identify", "userId": "ann", "traits": {"plan": "pro"}},
            track("bob"),
        ]
    }
    answer = post_json("/v1/batch", body, auth=basic_auth(write)).json()

    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(0, "userId"), (1, "userId")]
    assert "erased and their events are suppressed" in answer["rejected"][0]["reason"]
    assert not stored(workspace, "ann") and stored(workspace, "bob")
    assert Event.objects.for_workspace(workspace).count() == 1

    native = post_json("/api/v1/events", [track("ann", n=1)], **bearer(write)).json()
    assert native["results"][0]["status"] == "rejected"
    assert native["results"][0]["field"] == "userId"


def test_erased_without_suppression_they_come_back_with_their_next_event(client, workspace, keys):
    _, write = keys
    event(customer(workspace, "ann"), "Order Completed", 2)

    erased = client.delete("/api/v1/customers/ann/data", **bearer(write))

    assert erased.json()["suppressed"] is False
    assert not SuppressedCustomer.objects.for_workspace(workspace).exists()
    events_ingest(workspace=workspace, payloads=[track("ann")])
    assert stored(workspace, "ann")


def test_a_suppression_is_read_lifted_and_set_over_the_api_with_scopes(
    client, workspace, other_workspace, keys
):
    read, write = keys
    _, theirs = api_key_create(workspace=other_workspace, scopes=["read", "write"], name="t")
    customer(workspace, "ann")
    customer_erase(workspace=workspace, external_id="ann", actor=Actor.system("t"), suppress=True)
    url = "/api/v1/suppressions/ann"

    shown = client.get(url, **bearer(read))
    assert shown.status_code == 200
    assert shown.json()["suppressed"] is True and shown.json()["suppressed_by"] == "t"
    assert client.get(url, **bearer(theirs)).status_code == 404  # another workspace's list
    assert client.delete(url, **bearer(read)).status_code == 403
    assert client.put(url, **bearer(read)).status_code == 403
    assert client.delete(url, **bearer(theirs)).status_code == 404

    assert client.delete(url, **bearer(write)).status_code == 204
    assert client.get(url, **bearer(read)).status_code == 404
    assert client.delete(url, **bearer(write)).status_code == 404
    events_ingest(workspace=workspace, payloads=[track("ann")])
    assert stored(workspace, "ann")

    # An opt-out before any event: suppress the id alone; a stored customer is erased instead.
    assert client.put("/api/v1/suppressions/carl", **bearer(write)).status_code == 201
    assert client.put("/api/v1/suppressions/carl", **bearer(write)).status_code == 200
    conflict = client.put(url, **bearer(write))
    assert conflict.status_code == 409 and "suppress" in conflict.json()["detail"]
    assert stored(workspace, "ann")
    result = events_ingest(workspace=workspace, payloads=[track("carl")])
    assert result.stored == 0 and result.rejections[0].field == "userId"
    events_ingest(workspace=other_workspace, payloads=[track("carl")])
    assert stored(other_workspace, "carl")  # suppressed in acme only

    actions = list(
        AuditEntry.objects.for_workspace(workspace)
        .filter(object_type="suppression")
        .order_by("at", "pk")
        .values_list("action", "object_repr")
    )
    assert actions == [("delete", "ann"), ("create", "carl")]


def test_an_opt_out_list_is_suppressed_at_once_over_the_api(client, workspace, keys):
    read, write = keys
    customer(workspace, "ann")
    url = "/api/v1/suppressions"
    client.put("/api/v1/suppressions/old", **bearer(write))

    body = {"ids": ["new-1", "ann", "old", "new-2", "new-1"]}
    done = client.post(url, body, content_type="application/json", **bearer(write))

    assert done.status_code == 200
    assert done.json() == {
        "suppressed": ["new-1", "new-2"],
        "already": ["old"],
        "stored": ["ann"],
        "erased": [],
    }
    assert SuppressedCustomer.objects.for_workspace(workspace).count() == 3
    assert stored(workspace, "ann")
    entry = (
        AuditEntry.objects.for_workspace(workspace)
        .filter(object_type="suppression")
        .order_by("pk")
        .last()
    )
    assert (entry.object_repr, entry.after) == ("2 ids", {"ids": ["new-1", "new-2"]})
    assert (
        client.post(url, body, content_type="application/json", **bearer(read)).status_code == 403
    )
    for bad in ({"ids": []}, {"ids": ["x" * 256]}, {"ids": ["a\x00b"]}, {"ids": "a"}, {}):
        answer = client.post(url, bad, content_type="application/json", **bearer(write))
        assert answer.status_code == 400 and "ids" in answer.json(), bad
    too_many = {"ids": [str(i) for i in range(1001)]}
    answer = client.post(url, too_many, content_type="application/json", **bearer(write))
    assert answer.status_code == 400 and "ids" in answer.json()
    assert SuppressedCustomer.objects.for_workspace(workspace).count() == 3


def test_a_bad_suppress_flag_is_a_400_naming_it(client, workspace, keys):
    _, write = keys
    customer(workspace, "ann")
    answer = client.delete("/api/v1/customers/ann/data?suppress=perhaps", **bearer(write))
    assert answer.status_code == 400 and "suppress" in answer.json()
    assert stored(workspace, "ann")


def test_an_odd_id_is_suppressed_and_looked_up(client, workspace, keys):
    read, write = keys
    odd = "a/../b?#%"
    url = "/api/v1/suppressions/" + quote(odd, safe="")
    assert client.put(url, **bearer(write)).status_code == 201
    assert client.get(url, **bearer(read)).json()["customer"] == odd
    assert events_ingest(workspace=workspace, payloads=[track(odd)]).stored == 0


def test_a_file_import_names_the_line_of_each_refused_event(workspace):
    customer_suppress(workspace=workspace, external_id="ann", actor=Actor.system("t"))
    lines = [
        SourceLine(line=1, payload=json.dumps(track("bob")).encode()),
        SourceLine(line=2, payload=json.dumps(track("ann")).encode()),
        SourceLine(line=3, payload=json.dumps(track("bob", n=1)).encode()),
    ]

    summary = events_import(workspace=workspace, lines=lines, source="file.jsonl")

    assert summary.stored == 2
    assert [(line, field) for _, line, field, _ in summary.rejected] == [(2, "userId")]
    assert not stored(workspace, "ann")


def test_owners_delete_with_suppression_and_lift_it_on_the_pages(client, make_user, workspace):
    event(customer(workspace, "ann"), "Order Completed", 2)
    detail = customer_url("customer-detail", "ann")
    page = reverse("suppressions")

    client.force_login(make_user("vic", workspace=workspace, role=Membership.Role.VIEWER))
    assert client.post(reverse("suppression-add"), {"ids": "zed"}).status_code == 403
    client.force_login(make_user("ed", workspace=workspace, role=Membership.Role.EDITOR))
    assert client.post(reverse("suppression-add"), {"ids": "zed"}).status_code == 403

    client.force_login(make_user("own", workspace=workspace, role=Membership.Role.OWNER))
    assert 'name="suppress"' in client.get(detail).content.decode()
    done = client.post(customer_url("customer-delete", "ann"), {"confirm": "ann", "suppress": "1"})
    assert done.status_code == 302
    listed = client.get(f"{page}?id=ann").content.decode()
    assert "<strong>1</strong> id suppressed" in listed
    assert "is <strong>suppressed</strong>" in listed and "by own" in listed
    assert 'id="suppression-lift-form"' in listed
    assert events_ingest(workspace=workspace, payloads=[track("ann")]).stored == 0

    lifted = client.post(reverse("suppression-lift"), {"id": "ann"}, follow=True)
    assert "accepted again" in lifted.content.decode()
    assert not SuppressedCustomer.objects.for_workspace(workspace).exists()
    assert events_ingest(workspace=workspace, payloads=[track("ann")]).stored == 1

    refused = client.post(reverse("suppression-add"), {"ids": "ann"}, follow=True)
    assert "Not suppressed, they have data here: &#x27;ann&#x27;" in refused.content.decode()
    empty = client.post(reverse("suppression-add"), {"ids": " \n \n"})
    assert empty.status_code == 400 and 'id="field-ids"' in empty.content.decode()
    long = client.get(f"{page}?id={'x' * 300}")
    assert long.status_code == 400 and "at most 255 characters" in long.content.decode()
    nul = client.get(f"{page}?id=a%00b")
    assert nul.status_code == 400 and 'id="suppression-error"' in nul.content.decode()

    # An opt-out list: the new ids suppressed, the stored customer named and left alone.
    listed = client.post(
        reverse("suppression-add"), {"ids": "zed\n\nyan\nann\nzed\n"}, follow=True
    ).content.decode()
    assert "Events for &#x27;zed&#x27;, &#x27;yan&#x27; will be refused" in listed
    assert "they have data here: &#x27;ann&#x27;" in listed
    assert "<strong>2</strong> ids suppressed" in listed
    too_long = client.post(reverse("suppression-add"), {"ids": "ok\n" + "x" * 256})
    assert too_long.status_code == 400 and "Line 2: an id has at most 255" in (
        too_long.content.decode()
    )
    too_many = client.post(reverse("suppression-add"), {"ids": "\n".join(map(str, range(1001)))})
    assert too_many.status_code == 400 and "1,001 ids: at most 1,000" in too_many.content.decode()
    assert SuppressedCustomer.objects.for_workspace(workspace).count() == 2

    client.force_login(make_user("vic2", workspace=workspace, role=Membership.Role.VIEWER))
    seen = client.get(f"{page}?id=ann").content.decode()
    assert "<strong>2</strong> ids suppressed" in seen
    assert "stored customer" in seen and 'id="suppress-list-form"' not in seen
    assert 'id="suppression-add-form"' not in client.get(f"{page}?id=new").content.decode()


def test_the_command_deletes_with_suppression(workspace, capsys):
    event(customer(workspace, "ann"), "Order Completed", 2)
    call_command("delete_customer", "ann", workspace="acme", suppress=True)
    assert "later events will be refused" in capsys.readouterr().out
    assert events_ingest(workspace=workspace, payloads=[track("ann")]).stored == 0


def _waiting_on_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_a_batch_arriving_during_the_erasure_waits_and_is_refused(make_workspace, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the lock between writes and erasures is PostgreSQL's (SQLite writes serially)")
    monkeypatch.setattr("memory.services.recompute_request", lambda *, workspace_id: None)
    workspace = make_workspace("suppress-race")
    event(customer(workspace, "ann"), "Order Completed", 2)
    erased, release, results = threading.Event(), threading.Event(), {}

    def erase():
        try:
            with transaction.atomic():  # the erasure done but not committed until released
                customer_erase(
                    workspace=workspace, external_id="ann", actor=Actor.system("t"), suppress=True
                )
                erased.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    def ingest():
        try:
            results["batch"] = events_ingest(workspace=workspace, payloads=[track("ann", n=9)])
        finally:
            connections.close_all()

    eraser = threading.Thread(target=erase)
    eraser.start()
    assert erased.wait(timeout=60)
    writer = threading.Thread(target=ingest)
    writer.start()
    deadline = time.monotonic() + 60
    while not _waiting_on_advisory_lock():  # the batch waits for the erasure to end
        assert time.monotonic() < deadline, "the batch did not wait for the erasure"
        threading.Event().wait(0.02)
    release.set()
    eraser.join(timeout=60)
    writer.join(timeout=60)

    assert results["batch"].stored == 0
    assert results["batch"].rejections[0].field == "userId"
    assert not stored(workspace, "ann")
    assert not Event.objects.for_workspace(workspace).exists()


def test_a_deletion_list_erases_those_with_data_and_suppresses_everyone(
    client, workspace, keys, monkeypatch
):
    _, write = keys
    for name in ("ann", "bob"):
        event(customer(workspace, name), "Order Completed", 2)
    url = "/api/v1/suppressions"
    body = {"ids": ["bob", "new", "ann"], "erase": True}

    done = client.post(url, body, content_type="application/json", **bearer(write)).json()

    assert (done["suppressed"], done["already"], done["stored"]) == (["new"], [], [])
    assert [item["customer"] for item in done["erased"]] == ["bob", "ann"]
    assert all(item["suppressed"] and item["deleted"]["memory.event"] for item in done["erased"])
    assert not Customer.objects.for_workspace(workspace).exists()
    assert SuppressedCustomer.objects.for_workspace(workspace).count() == 3
    deleted = AuditEntry.objects.for_workspace(workspace).filter(action="delete")
    assert sorted(deleted.values_list("object_repr", flat=True)) == ["ann", "bob"]
    for name in ("ann", "bob", "new"):
        assert events_ingest(workspace=workspace, payloads=[track(name)]).stored == 0

    # More stored customers than one call erases: refused whole, nothing done.
    monkeypatch.setattr("memory.privacy.ERASE_AT_ONCE", 1)
    for name in ("cy", "di"):
        customer(workspace, name)
    refused = client.post(
        url,
        {"ids": ["cy", "di", "ed"], "erase": True},
        content_type="application/json",
        **bearer(write),
    )
    assert refused.status_code == 400 and "erase at most 1 at once" in refused.json()["ids"][0]
    assert Customer.objects.for_workspace(workspace).count() == 2
    assert SuppressedCustomer.objects.for_workspace(workspace).count() == 3


def test_an_owner_deletes_a_list_on_the_page(client, make_user, workspace, monkeypatch):
    for name in ("ann", "bob"):
        event(customer(workspace, name), "Order Completed", 2)
    client.force_login(make_user("own", workspace=workspace, role=Membership.Role.OWNER))
    page = client.post(
        reverse("suppression-add"), {"ids": "ann\nzed\nbob", "erase": "on"}, follow=True
    ).content.decode()
    assert "Deleted &#x27;ann&#x27;, &#x27;bob&#x27; with" in page
    assert "Events for &#x27;zed&#x27; will be refused" in page
    assert not Customer.objects.for_workspace(workspace).exists()
    monkeypatch.setattr("memory.privacy.ERASE_AT_ONCE", 0)
    customer(workspace, "cy")
    refused = client.post(reverse("suppression-add"), {"ids": "cy", "erase": "on"})
    assert refused.status_code == 400 and "erase at most 0 at once" in refused.content.decode()
    assert Customer.objects.for_workspace(workspace).filter(external_id="cy").exists()


def test_asked_for_a_suppressed_id_the_api_and_page_say_it_was_deleted_not_that_it_is_new(
    client, workspace, keys, member
):
    read, write = keys
    event(customer(workspace, "ann"), "Order Completed", 1)
    customer_erase(workspace=workspace, external_id="ann", actor=Actor.system(), suppress=True)
    urls = [
        reverse(name, args=["ann"])
        for name in (
            "api-customer-next-best",
            "api-customer-memory",
            "api-customer-prompt",
            "api-customer-data",
        )
    ]

    for url in urls:
        answer = client.get(url, **bearer(read))
        assert answer.status_code == 404, url
        assert (
            "No customer 'ann' in this workspace: their data was deleted at their request"
            in (answer.json()["detail"])
        )
    again = client.delete(reverse("api-customer-data", args=["ann"]), **bearer(write))
    assert again.status_code == 404 and "the id is suppressed" in again.json()["detail"]
    unknown = client.get(reverse("api-customer-next-best", args=["bob"]), **bearer(read))
    assert unknown.json()["detail"] == "No customer 'bob' in this workspace."
    client.force_login(member)
    page = client.get(customer_url("customer-detail", "ann"))
    assert page.status_code == 404
    assert "their data was deleted at their request" in page.content.decode()
    assert "No customer &#x27;bob&#x27; in this workspace." in (
        client.get(customer_url("customer-detail", "bob")).content.decode()
    )


def test_a_long_deletion_list_looks_its_ids_up_at_once(workspace, django_assert_max_num_queries):
    from memory.privacy import SUPPRESS_AT_ONCE, customers_erase_and_suppress

    ids = [f"nobody-{n}" for n in range(SUPPRESS_AT_ONCE)]
    with django_assert_max_num_queries(20):  # not one lookup per id
        suppressed, erased = customers_erase_and_suppress(
            workspace=workspace, external_ids=ids, actor=Actor.system()
        )
    assert (len(suppressed.added), erased) == (SUPPRESS_AT_ONCE, [])
