"""Reads for the guardrails and overrides pages and API."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from campaigns.models import Guardrail, Label, Override, Workspace


def guardrails_filtered(*, workspace: Workspace, active: bool | None = None) -> QuerySet[Guardrail]:
    """Return the workspace's guardrails, active or archived, by kind and name."""
    rows = Guardrail.objects.for_workspace(workspace).select_related(
        "label__label_set", "message", "campaign"
    )
    return rows if active is None else rows.filter(active=active)


def overrides_filtered(
    *,
    workspace: Workspace,
    active: bool | None = None,
    customer: str = "",
    label: str = "",
    in_force: bool = False,
) -> QuerySet[Override]:
    """Return the workspace's overrides, newest first; filtered by customer, `set:label`, or
    only those in force now (active and unexpired)."""
    rows = Override.objects.for_workspace(workspace).select_related("label__label_set")
    if active is not None:
        rows = rows.filter(active=active)
    if customer:
        rows = rows.filter(customer_external_id=customer)
    if label:
        set_slug, _, slug = label.partition(":")
        rows = rows.filter(label__label_set__slug=set_slug, label__slug=slug)
    if in_force:
        now = timezone.now()
        rows = rows.filter(active=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return rows


def boosted_labels(*, workspace: Workspace) -> QuerySet[Label]:
    """Return the labels with a boost: the overrides for everyone (set on the labels page)."""
    return (
        Label.objects.for_workspace(workspace)
        .filter(active=True)
        .exclude(boost=0)
        .select_related("label_set")
        .order_by("label_set__slug", "slug")
    )
