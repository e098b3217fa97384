"""Celery tasks for configuration: thin, ids in, one call each."""

from celery import shared_task
from django.db import OperationalError, connection

from campaigns.catalogue.campaign_selectors import campaigns_to_count
from campaigns.catalogue.campaign_services import campaign_tally_count
from campaigns.models import Webhook, Workspace
from campaigns.prompts.preference_jobs import preference_export_run
from campaigns.webhooks.services import (
    MAX_ATTEMPTS,
    backoff_s,
    webhook_deliveries_for_changed_prompts,
    webhook_delivery_attempt,
    webhook_ping_create,
)


@shared_task(name="campaigns.health_check")
def health_check() -> dict:
    """Prove a worker can reach the database: its vendor and how many workspaces it sees."""
    return {"database": connection.vendor, "workspaces": Workspace.objects.count()}


@shared_task(
    bind=True,
    name="campaigns.webhook_deliver",
    acks_late=True,
    max_retries=MAX_ATTEMPTS - 1,
    time_limit=120,
    soft_time_limit=110,
)
def webhook_deliver(self, delivery_id: int) -> str:
    """POST one webhook delivery; on failure retry with exponential backoff."""
    retries = self.request.retries
    while True:
        attempt = webhook_delivery_attempt(
            delivery_id=delivery_id, final=retries >= self.max_retries
        )
        if not attempt.retry:
            return attempt.status
        if not self.request.is_eager:
            raise self.retry(countdown=backoff_s(retries))
        # In-process (no worker, e.g. the demo): nothing would run a later retry, so retry now.
        retries += 1


@shared_task(name="campaigns.webhooks_deliver_changed_prompts", acks_late=True)
def webhooks_deliver_changed_prompts_task(workspace_id: int, run_id: int | None = None) -> dict:
    """Queue every active webhook's changed prompts after a recompute."""
    changed = webhook_deliveries_for_changed_prompts(workspace_id=workspace_id, run_id=run_id)
    for delivery_id in changed.delivery_ids:
        webhook_deliver.delay_on_commit(delivery_id)
    return changed.summary()


@shared_task(name="campaigns.webhook_ping", acks_late=True)
def webhook_ping(webhook_id: int) -> int | None:
    """Send a signed ping to one webhook; return the delivery's id (None if it is gone)."""
    webhook = Webhook.objects.all_workspaces().select_related("workspace").filter(pk=webhook_id)
    found = webhook.first()
    if found is None:
        return None
    delivery = webhook_ping_create(webhook=found)
    webhook_deliver.delay_on_commit(delivery.pk)
    return delivery.pk


@shared_task(name="campaigns.campaign_tally_count", acks_late=True)
def campaign_tally_count_task(campaign_id: int) -> int | None:
    """Count one campaign's sends and credited goals; return its sends (None: it is gone)."""
    tally = campaign_tally_count(campaign_id=campaign_id)
    return None if tally is None else tally.sends


@shared_task(name="campaigns.campaign_tallies_count", acks_late=True)
def campaign_tallies_count_task(workspace_id: int) -> int:
    """Count the workspace's campaigns due a count (after a recompute); return how many."""
    ids = campaigns_to_count(workspace_id=workspace_id)
    for campaign_id in ids:
        campaign_tally_count(campaign_id=campaign_id)
    return len(ids)


@shared_task(
    name="campaigns.preference_export",
    acks_late=True,
    autoretry_for=(OperationalError,),
    max_retries=3,
    retry_backoff=True,
)
def preference_export(job_id: int) -> None:
    """Run one preference export (campaigns/prompts/preference_jobs.py)."""
    preference_export_run(job_id=job_id)
