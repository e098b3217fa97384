"""Reads for what the marketer configures."""

from django.db.models import Count, Prefetch, QuerySet

from campaigns.models import ApiKey, Label, LabelSet, Membership, Message, Workspace


def memberships_of_user(*, user) -> QuerySet[Membership]:
    """Return the user's memberships, with their workspaces, alphabetically."""
    return (
        Membership.objects.all_workspaces()
        .filter(user=user)
        .select_related("workspace")
        .order_by("workspace__slug")
    )


def membership_current(*, user, workspace_id: int | None) -> Membership | None:
    """Return the membership for the chosen workspace, else the user's first one, else None."""
    memberships = memberships_of_user(user=user)
    if workspace_id is not None:
        chosen = memberships.filter(workspace_id=workspace_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def label_sets_with_labels(*, workspace: Workspace) -> QuerySet[LabelSet]:
    """Return the workspace's label sets, each with its labels and how many messages carry them."""
    labels = Label.objects.for_workspace(workspace).annotate(message_count=Count("messages"))
    return (
        LabelSet.objects.for_workspace(workspace)
        .prefetch_related(Prefetch("labels", queryset=labels))
        .order_by("slug")
    )


def messages_with_labels(*, workspace: Workspace) -> QuerySet[Message]:
    """Return the workspace's messages with their labels."""
    labels = Label.objects.for_workspace(workspace).select_related("label_set")
    return (
        Message.objects.for_workspace(workspace)
        .prefetch_related(Prefetch("labels", queryset=labels))
        .order_by("key")
    )


def api_keys_of_workspace(*, workspace: Workspace) -> QuerySet[ApiKey]:
    """Return the workspace's API keys, newest first (prefixes only; secrets are not stored)."""
    return ApiKey.objects.for_workspace(workspace).order_by("-created_at")
