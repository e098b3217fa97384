"""Reads: a workspace's webhooks and their delivery log."""

from __future__ import annotations

from django.db.models import Count, Max, Q, QuerySet

from campaigns.models import Webhook, WebhookDelivery, Workspace

LOG_LENGTH = 100


def webhooks_of_workspace(*, workspace: Workspace) -> QuerySet[Webhook]:
    """Return the workspace's webhooks with their delivery counts and last delivery time."""
    return (
        Webhook.objects.for_workspace(workspace)
        .select_related("campaign")
        .annotate(
            delivery_count=Count("deliveries"),
            failed_count=Count("deliveries", filter=Q(deliveries__status="failed")),
            last_delivery_at=Max("deliveries__created_at"),
        )
        .order_by("created_at", "pk")
    )


def webhook_of_workspace(*, workspace: Workspace, webhook_id: int) -> Webhook | None:
    """Return one of the workspace's webhooks, or None."""
    return (
        Webhook.objects.for_workspace(workspace)
        .select_related("campaign")
        .filter(pk=webhook_id)
        .first()
    )


def webhook_deliveries(*, webhook: Webhook, limit: int = LOG_LENGTH) -> QuerySet[WebhookDelivery]:
    """Return the webhook's latest deliveries, newest first, without their bodies."""
    return (
        WebhookDelivery.objects.for_workspace(webhook.workspace_id)
        .filter(webhook=webhook)
        .defer("body", "hashes")
        .order_by("-created_at", "-pk")[:limit]
    )
