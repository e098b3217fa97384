"""Receivers of other apps' signals: thin, each queues one task (signals are an interface)."""

from campaigns.tasks import (
    campaign_tallies_count_task,
    webhook_deliver,
    webhooks_deliver_changed_prompts_task,
)
from campaigns.webhooks.services import webhooks_customer_erased


def changed_prompts_deliver(sender, *, workspace_id: int, run_id: int, **kwargs) -> None:
    """Queue delivery of the prompts a recompute changed (a no-op without webhooks)."""
    webhooks_deliver_changed_prompts_task.delay_on_commit(workspace_id, run_id)


def campaign_tallies_count(sender, *, workspace_id: int, run_id: int, **kwargs) -> None:
    """Queue a fresh count of the workspace's campaigns: a run sees the events up to now."""
    campaign_tallies_count_task.delay_on_commit(workspace_id)


def customer_erased_tell_webhooks(
    sender,
    *,
    workspace_id: int,
    customer_id: int,
    external_id: str,
    suppressed: bool = False,
    **kwargs,
) -> None:
    """Erase the customer from the webhook log and queue 'customer.deleted' (same transaction)."""
    for delivery_id in webhooks_customer_erased(
        workspace_id=workspace_id,
        customer_id=customer_id,
        external_id=external_id,
        suppressed=suppressed,
    ):
        webhook_deliver.delay_on_commit(delivery_id)
