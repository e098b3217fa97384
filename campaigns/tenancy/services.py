"""Writes for tenancy: workspaces, memberships, users and API keys; one use case each."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from campaigns.models import ApiKey, LabelSet, Membership, Workspace

DEFAULT_LABEL_SETS = {
    LabelSet.VALUE_PROPOSITION: "Value proposition",
    "tone": "Tone",
    "channel": "Channel",
}
# Touch last_used_at at most this often, so authenticating is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@transaction.atomic
def workspace_create(*, slug: str, name: str = "", owner=None) -> Workspace:
    """Create a workspace with the default label sets, and make `owner` its owner."""
    workspace = Workspace(slug=slug, name=name or slug.replace("-", " ").title())
    workspace.full_clean()
    workspace.save()
    LabelSet.objects.bulk_create(
        LabelSet(
            workspace=workspace,
            slug=set_slug,
            name=set_name,
            multiple=set_slug == LabelSet.CHANNEL,
        )
        for set_slug, set_name in DEFAULT_LABEL_SETS.items()
    )
    if owner is not None:
        Membership.objects.create(workspace=workspace, user=owner, role=Membership.Role.OWNER)
    return workspace


def membership_grant(*, workspace: Workspace, user, role: str) -> Membership:
    """Give a user a role in a workspace, replacing any role they had."""
    membership, _ = Membership.objects.for_workspace(workspace).update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    return membership


def user_ensure(*, username: str, password: str, email: str = "") -> object:
    """Return the user, creating it with this password when missing."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username, defaults={"email": email})
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def api_key_create(
    *, workspace: Workspace, scopes: list[str], name: str = ""
) -> tuple[ApiKey, str]:
    """Create a key and return it with its raw secret, which is never stored or shown again."""
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if not scopes or unknown:
        raise ValueError(f"scopes must be among {ApiKey.Scope.values}; got {sorted(scopes)}.")
    raw_key, prefix = ApiKey.generate()
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        prefix=prefix,
        key_hash=ApiKey.hash_of(raw_key),
        scopes=sorted(set(scopes)),
    )
    return api_key, raw_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """Return the active key matching the raw secret, or None; compares in constant time."""
    prefix = raw_key[: ApiKey.PREFIX_LENGTH]
    candidate = (
        ApiKey.objects.all_workspaces()
        .select_related("workspace")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if candidate is None:
        # Hash anyway so a miss costs the same as a wrong secret.
        ApiKey.hash_of(raw_key)
        return None
    if not candidate.matches(raw_key):
        return None
    now = timezone.now()
    if candidate.last_used_at is None or now - candidate.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.all_workspaces().filter(pk=candidate.pk).update(last_used_at=now)
        candidate.last_used_at = now
    return candidate


def api_key_revoke(*, api_key: ApiKey) -> None:
    """Revoke a key at once; it stays listed, with its prefix, for the record."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
