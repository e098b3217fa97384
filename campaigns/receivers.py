"""Receivers of other apps' signals: thin, each queues one task (signals are an interface)."""

from campaigns.tasks import campaign_tallies_count_task, webhooks_deliver_changed_prompts_task


def changed_prompts_deliver(sender, *, workspace_id: int, run_id: int, **kwargs) -> None:
    """Queue delivery of the prompts a recompute changed (a no-op without webhooks)."""
    webhooks_deliver_changed_prompts_task.delay_on_commit(workspace_id, run_id)


def campaign_tallies_count(sender, *, workspace_id: int, run_id: int, **kwargs) -> None:
    """Queue a fresh count of the workspace's campaigns: a run sees the events up to now."""
    campaign_tallies_count_task.delay_on_commit(workspace_id)
