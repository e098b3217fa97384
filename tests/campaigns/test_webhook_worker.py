"""A real Celery worker on Redis retries a failed webhook delivery with its backoff."""

import time

import pytest

from campaigns.models import WebhookDelivery
from campaigns.tasks import webhooks_deliver_changed_prompts_task
from campaigns.webhooks.services import webhook_create
from tests.campaigns.prompt_support import customer, remember
from tests.campaigns.test_webhook_delivery import documented_verify


def wait_for_delivery(workspace, done, timeout_s=60.0) -> WebhookDelivery:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.objects.for_workspace(workspace).first()
        if delivery is not None and done(delivery):
            return delivery
        time.sleep(0.2)
    pytest.fail(f"the delivery did not finish in {timeout_s} s: {delivery}")


@pytest.mark.worker
def test_it_retries_a_failed_delivery_on_a_real_worker(workspace, celery_workers, receiver):
    celery_workers.start(PRIMER_WEBHOOK_BACKOFF_S="0.2")
    remember(customer(workspace, "cust-1", {"plan": "gold"}))
    hook = webhook_create(workspace=workspace, url=receiver.url + "/hook")
    receiver.codes.extend([500, 502])
    # Outside a transaction the delivery task is queued at once, to the private queue.
    summary = webhooks_deliver_changed_prompts_task(workspace.pk, 1)
    assert summary["deliveries"] == 1
    delivery = wait_for_delivery(workspace, lambda d: d.status == "succeeded")
    assert (delivery.attempts, delivery.response_code) == (3, 200)
    assert len(receiver.requests) == 3
    assert all(
        documented_verify(hook.secret, r["raw"], r["headers"]["x-primer-signature"])
        for r in receiver.requests
    )
