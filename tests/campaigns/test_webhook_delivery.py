"""Webhooks: changed prompts POSTed to a receiver on 127.0.0.1, signed, batched and retried."""

import hashlib
import hmac
import json
import socket
import time
from datetime import timedelta

import pytest

from campaigns.models import WebhookDelivery
from campaigns.tasks import webhook_ping, webhooks_deliver_changed_prompts_task
from campaigns.webhooks.services import (
    BATCH_SIZE,
    MAX_ATTEMPTS,
    backoff_s,
    webhook_create,
    webhook_delivery_attempt,
)
from campaigns.webhooks.signing import signature_header, verify
from memory.models import Decision
from tests.campaigns.prompt_support import MEMORY_AT, customer, message, remember
from tests.memory.decision_support import holdout_campaign, plant_next_best, succeeded_run

pytestmark = pytest.mark.django_db


def documented_verify(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> bool:
    """The verification snippet of docs/prompts.md, copied as a receiver would."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in-process even when REDIS_URL points at real workers."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def deliver(django_capture_on_commit_callbacks, eager_tasks):
    def run(workspace, run_id=None):
        with django_capture_on_commit_callbacks(execute=True):
            return webhooks_deliver_changed_prompts_task(workspace.pk, run_id)

    return run


@pytest.fixture
def hook(workspace, receiver):
    return webhook_create(workspace=workspace, url=receiver.url + "/primer", description="CRM")


def bodies(receiver):
    return [json.loads(request["raw"]) for request in receiver.requests]


def test_it_posts_changed_prompts_signed_so_the_documented_snippet_verifies(
    workspace, rich_customer, hook, receiver, deliver
):
    summary = deliver(workspace, run_id=7)
    assert summary == {"webhooks": 1, "deliveries": 1, "prompts": 1}
    (request,) = receiver.requests
    header = request["headers"]["x-primer-signature"]
    assert documented_verify(hook.secret, request["raw"], header)
    assert verify(hook.secret, request["raw"], header)
    assert not documented_verify("whsec_wrong", request["raw"], header)
    assert not verify(hook.secret, request["raw"] + b" ", header)
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["x-primer-event"] == "prompts.changed"
    body = json.loads(request["raw"])
    assert body["event"] == "prompts.changed" and body["run_id"] == 7
    assert body["workspace"] == "acme"
    (prompt,) = body["prompts"]
    assert prompt["customer_id"] == "cust-1"
    assert prompt["content_hash"] == hashlib.sha256(prompt["prompt"].encode()).hexdigest()
    delivery = WebhookDelivery.objects.for_workspace(workspace).get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 1, 200)
    assert delivery.duration_ms is not None


def test_it_rejects_stale_or_malformed_signatures():
    body = b'{"event":"ping"}'
    old = signature_header("s", body, timestamp=int(time.time()) - 301)
    assert not verify("s", body, old)
    assert verify("s", body, old, tolerance_s=400)
    assert not verify("s", body, "nonsense")
    assert not verify("s", body, "t=abc,v1=00")


def test_it_sends_a_prompt_again_only_when_its_hash_changes(
    workspace, rich_customer, hook, receiver, deliver
):
    other = customer(workspace, "cust-2", {"plan": "free"})
    remember(other)
    assert deliver(workspace)["prompts"] == 2
    assert deliver(workspace)["prompts"] == 0
    remember(other, at=MEMORY_AT + timedelta(hours=3), primed_score=2.0)
    assert deliver(workspace)["prompts"] == 1
    assert [p["customer_id"] for p in bodies(receiver)[-1]["prompts"]] == ["cust-2"]


def test_it_batches_many_changed_prompts(workspace, hook, receiver, deliver):
    for i in range(BATCH_SIZE * 2 + 5):
        customer(workspace, f"c{i:04d}")
    summary = deliver(workspace)
    assert summary["deliveries"] == 3
    sizes = [len(body["prompts"]) for body in bodies(receiver)]
    assert sizes == [BATCH_SIZE, BATCH_SIZE, 5]
    ids = [p["customer_id"] for body in bodies(receiver) for p in body["prompts"]]
    assert len(ids) == len(set(ids)) == BATCH_SIZE * 2 + 5


def test_it_retries_a_failed_delivery_until_the_receiver_accepts(
    workspace, rich_customer, hook, receiver, deliver
):
    receiver.codes.extend([500, 503])
    deliver(workspace)
    delivery = WebhookDelivery.objects.for_workspace(workspace).get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 3, 200)
    assert len(receiver.requests) == 3
    # Every attempt is signed afresh over the same body.
    assert len({r["raw"] for r in receiver.requests}) == 1
    assert all(
        documented_verify(hook.secret, r["raw"], r["headers"]["x-primer-signature"])
        for r in receiver.requests
    )
    assert deliver(workspace)["prompts"] == 0  # delivered, so not sent again


def test_it_gives_up_after_the_last_attempt_and_sends_again_after_the_next_recompute(
    workspace, rich_customer, hook, receiver, deliver
):
    receiver.codes.extend([500] * MAX_ATTEMPTS)
    deliver(workspace)
    delivery = WebhookDelivery.objects.for_workspace(workspace).get()
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.error.startswith("HTTP 500")
    assert deliver(workspace)["prompts"] == 1  # never delivered, so still changed


def test_it_waits_longer_before_each_retry():
    assert [backoff_s(n) for n in range(8)] == [30, 60, 120, 240, 480, 960, 1920, 3600]


def test_it_records_the_error_and_next_attempt_of_an_unreachable_receiver(
    workspace, rich_customer, eager_tasks
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = webhook_create(workspace=workspace, url=f"http://127.0.0.1:{port}/")
    delivery = WebhookDelivery.objects.create(
        workspace=workspace, webhook=hook, body="{}", event="ping"
    )
    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert attempt.retry and not attempt.delivered
    delivery.refresh_from_db()
    assert delivery.status == "retrying" and delivery.response_code is None
    assert "refused" in delivery.error.lower()
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(seconds=30)


def test_it_refuses_private_addresses_when_told_to(
    workspace, rich_customer, hook, receiver, deliver, settings
):
    settings.PRIMER_WEBHOOK_ALLOW_PRIVATE_URLS = False
    deliver(workspace)
    delivery = WebhookDelivery.objects.for_workspace(workspace).get()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert delivery.error.startswith("Refused")
    assert receiver.requests == []


def test_it_sends_a_signed_ping(
    workspace, hook, receiver, django_capture_on_commit_callbacks, eager_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        webhook_ping(hook.pk)
    (request,) = receiver.requests
    assert json.loads(request["raw"])["event"] == "ping"
    assert documented_verify(hook.secret, request["raw"], request["headers"]["x-primer-signature"])


def test_it_skips_paused_webhooks_and_other_workspaces(
    workspace, other_workspace, rich_customer, receiver, deliver
):
    from campaigns.webhooks.services import webhook_set_active

    paused = webhook_create(workspace=workspace, url=receiver.url)
    webhook_set_active(webhook=paused, active=False)
    webhook_create(workspace=other_workspace, url=receiver.url)
    assert deliver(workspace) == {"webhooks": 0, "deliveries": 0, "prompts": 0}
    assert receiver.requests == []


def test_it_runs_as_a_thin_task(workspace, rich_customer, hook, receiver, eager_tasks):
    from campaigns.tasks import webhooks_deliver_changed_prompts_task

    result = webhooks_deliver_changed_prompts_task.delay(workspace.pk, 3)
    assert result.get()["prompts"] == 1


def test_a_campaign_webhook_logs_the_decision_each_delivered_prompt_states_and_no_other(
    workspace, receiver, deliver
):
    offers = [message(workspace, f"m{i}", f"Offer {i}\nBody {i}") for i in range(2)]
    campaign = holdout_campaign(workspace, offers, random=0.0, no_memory=0.0)
    people = []
    for i in range(3):
        person = customer(workspace, f"c{i}")
        remember(person)
        plant_next_best(workspace, person, [(offers[0], 2.0), (offers[1], 0.0)])
        people.append(person)
    succeeded_run(workspace)
    webhook_create(workspace=workspace, url=receiver.url + "/crm", campaign=campaign)
    served = Decision.objects.for_workspace(workspace).filter(source="webhook")

    assert deliver(workspace)["prompts"] == 3
    prompts = bodies(receiver)[-1]["prompts"]
    assert served.count() == 3
    for prompt in prompts:
        decision = served.get(public_id=prompt["decision_id"])
        assert decision.customer.external_id == prompt["customer_id"]
        assert decision.campaign_id == campaign.pk
        assert decision.message.key in prompt["prompt"]
    # Unchanged memories: nothing delivered and no new draw, whatever the last draws were.
    assert deliver(workspace)["prompts"] == 0
    assert served.count() == 3
    remember(people[1], at=MEMORY_AT + timedelta(hours=3), primed_score=2.0)
    assert deliver(workspace)["prompts"] == 1
    (again,) = bodies(receiver)[-1]["prompts"]
    assert again["customer_id"] == "c1"
    assert served.count() == 4
    assert served.get(public_id=again["decision_id"]).customer_id == people[1].pk
