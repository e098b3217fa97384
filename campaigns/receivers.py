"""Receivers of other apps' signals: thin, each queues one task (signals are an interface)."""

from campaigns.tasks import webhooks_deliver_changed_prompts_task


def changed_prompts_deliver(sender, *, workspace_id: int, run_id: int, **kwargs) -> None:
    """Queue delivery of the prompts a recompute changed (a no-op without webhooks)."""
    webhooks_deliver_changed_prompts_task.delay_on_commit(workspace_id, run_id)
