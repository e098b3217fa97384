"""Memory's own reactions to its signals: thin, each queues one task."""

from memory.tasks import decisions_match


def decisions_match_after_recompute(sender, *, workspace_id: int, run_id: int, **kwargs) -> None:
    """Match the decisions to the sends a recompute has just seen (the beat does it too)."""
    decisions_match.delay_on_commit(workspace_id)
