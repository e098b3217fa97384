"""Retries that race: several copies of a batch at once, on separate connections, store once."""

import contextlib
import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from campaigns.catalogue import services as catalogue_services
from campaigns.models import Label, Message
from campaigns.tenancy.services import api_key_create, workspace_create
from memory.ingest import messages as messages_module
from memory.models import Customer, Event
from memory.services import events_ingest

COPIES = 6


@pytest.fixture
def no_recompute(monkeypatch):
    """Keep these committed ingests from queueing recomputes on a real broker."""
    scheduled = []
    monkeypatch.setattr(
        "memory.services.recompute_request",
        lambda *, workspace_id: scheduled.append(workspace_id),
    )
    return scheduled


def batch_of(size: int) -> list[dict]:
    return [
        {
            "type": "track",
            "userId": f"user-{i % 25}",
            "event": "Order Completed",
            "messageId": f"race-{i}",
            "properties": {"revenue": i},
            "timestamp": "2026-02-01T10:00:00Z",
        }
        for i in range(size)
    ] + [{"type": "identify", "userId": "user-0", "traits": {"vip": True}}]


def post(url: str, body: bytes, auth: str) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": auth},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


@pytest.mark.django_db(transaction=True)
def test_it_stores_once_when_copies_of_a_batch_race_through_http(
    live_server, basic_auth, no_recompute
):
    workspace = workspace_create(slug="race")
    _, raw_key = api_key_create(workspace=workspace, scopes=["write"])
    body = json.dumps({"batch": batch_of(300)}).encode()
    barrier = threading.Barrier(COPIES)

    def send(_):
        barrier.wait()
        return post(f"{live_server.url}/v1/batch", body, basic_auth(raw_key))

    with ThreadPoolExecutor(COPIES) as pool:
        statuses = list(pool.map(send, range(COPIES)))

    assert statuses == [200] * COPIES
    assert Event.objects.for_workspace(workspace).count() == 300
    assert Customer.objects.for_workspace(workspace).count() == 25
    assert Customer.objects.for_workspace(workspace).get(external_id="user-0").traits == {
        "vip": True
    }


@pytest.mark.django_db(transaction=True)
def test_it_stores_once_when_services_race_on_separate_connections(no_recompute):
    workspace = workspace_create(slug="race-direct")
    payloads = batch_of(500)
    barrier = threading.Barrier(COPIES)

    def ingest(_):
        try:
            barrier.wait()
            result = events_ingest(workspace=workspace, payloads=payloads)
            return result.stored, result.duplicates
        finally:
            connections.close_all()

    with ThreadPoolExecutor(COPIES) as pool:
        outcomes = list(pool.map(ingest, range(COPIES)))

    assert sum(stored for stored, _ in outcomes) == 500
    assert all(stored + duplicates == 500 for stored, duplicates in outcomes)
    assert Event.objects.for_workspace(workspace).count() == 500


def sends_registering(offers: list[tuple[str, str]]) -> list[dict]:
    return [
        {
            "type": "track",
            "userId": f"user-{key}",
            "event": "Message Sent",
            "messageId": f"send-{key}",
            "properties": {"message_id": key, "text": key, "labels": {"tone": tone}},
        }
        for key, tone in offers
    ]


@pytest.mark.django_db(transaction=True)
def test_it_registers_labels_without_deadlocking_batches_that_name_them_in_opposite_orders(
    no_recompute, monkeypatch
):
    """Two batches each register two new messages whose new labels they meet in opposite
    orders. Both hold their first label's lock at once (the barrier); taking the second one
    must not deadlock, so all labels of a batch are created in one sorted statement first."""
    workspace = workspace_create(slug="race-labels")
    batches = [
        sends_registering([("offer-a", "playful"), ("offer-d", "serious")]),
        sends_registering([("offer-b", "serious"), ("offer-c", "playful")]),
    ]
    barrier = threading.Barrier(2)
    labels_ensure = catalogue_services.labels_ensure
    first_call = threading.local()

    def ensure_then_meet(**kwargs):
        labels = labels_ensure(**kwargs)
        if not getattr(first_call, "done", False):
            first_call.done = True
            # Both batches now hold the locks of the labels they created first. (A batch that
            # waits on the other's lock never gets here: the other goes on after the timeout.)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=3)
        return labels

    monkeypatch.setattr(catalogue_services, "labels_ensure", ensure_then_meet)
    monkeypatch.setattr(messages_module, "labels_ensure", ensure_then_meet, raising=False)

    def ingest(index):
        try:
            return events_ingest(workspace=workspace, payloads=batches[index]).stored
        finally:
            connections.close_all()

    with ThreadPoolExecutor(2) as pool:
        stored = list(pool.map(ingest, range(2)))

    assert stored == [2, 2]
    assert Message.objects.for_workspace(workspace).count() == 4
    assert sorted(
        Label.objects.for_workspace(workspace)
        .filter(label_set__slug="tone", slug__in=["playful", "serious"])
        .values_list("slug", flat=True)
    ) == ["playful", "serious"]
