"""Reads for tenancy: memberships and API keys."""

from django.db.models import QuerySet

from campaigns.models import ApiKey, Membership, Workspace


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


def api_keys_of_workspace(*, workspace: Workspace) -> QuerySet[ApiKey]:
    """Return the workspace's API keys, newest first (prefixes only; secrets are not stored)."""
    return ApiKey.objects.for_workspace(workspace).order_by("-created_at")


def members_of_workspace(*, workspace: Workspace) -> QuerySet[Membership]:
    """Return the workspace's memberships with their users, by role, then name."""
    return (
        Membership.objects.for_workspace(workspace)
        .select_related("user")
        .order_by("role", "user__username")
    )
