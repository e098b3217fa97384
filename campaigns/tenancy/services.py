"""Writes for tenancy: workspaces, memberships, users and API keys; one use case each."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.models import ApiKey, AuditEntry, LabelSet, Membership, Workspace
from campaigns.tenancy.changes import Actor, audit_record, change_update, snapshot

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
    *, workspace: Workspace, scopes: list[str], name: str = "", created_by=None
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
        created_by=created_by,
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


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor | None = None) -> None:
    """Revoke a key at once, audited; it stays listed, with its prefix, for the record."""
    if api_key.revoked_at is not None:
        return
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_record(
        workspace=api_key.workspace,
        actor=actor or Actor.system(),
        action=AuditEntry.Action.ARCHIVE,
        obj=api_key,
        object_repr=f"API key {api_key.name or api_key.prefix}",
        before={"revoked_at": None},
        after=snapshot(api_key, ["revoked_at"]),
    )


def _is_owner(workspace: Workspace, user) -> bool:
    return (
        user is not None
        and Membership.objects.for_workspace(workspace)
        .filter(user_id=getattr(user, "pk", None), role=Membership.Role.OWNER)
        .exists()
    )


def api_key_scopes_check(*, workspace: Workspace, actor: Actor, scopes: list[str]) -> None:
    """Refuse scopes the actor may not grant: `admin` only by an owner in the browser, and a
    key never a scope it does not hold (so no key mints a stronger one)."""
    unknown = sorted(set(scopes) - set(ApiKey.Scope.values))
    if not scopes or unknown:
        raise ValidationError({"scopes": f"Choose scopes among {ApiKey.Scope.values}."})
    if actor.api_key is not None:
        if ApiKey.Scope.ADMIN in scopes:
            raise ValidationError(
                {"scopes": "Only an owner can grant 'admin', in the browser, not over the API."}
            )
        beyond = sorted(set(scopes) - set(actor.api_key.scopes))
        if beyond:
            raise ValidationError(
                {"scopes": f"A key cannot grant scopes it does not hold itself: {beyond}."}
            )
    elif not _is_owner(workspace, actor.user):
        raise ValidationError({"scopes": "Only an owner of the workspace can create keys."})


@transaction.atomic
def api_key_issue(
    *, workspace: Workspace, actor: Actor, scopes: list[str], name: str = ""
) -> tuple[ApiKey, str]:
    """Create a key for someone who may (see api_key_scopes_check), audited; return its secret."""
    api_key_scopes_check(workspace=workspace, actor=actor, scopes=scopes)
    api_key, raw_key = api_key_create(
        workspace=workspace, scopes=scopes, name=name.strip(), created_by=actor.user
    )
    audit_record(
        workspace=workspace,
        actor=actor,
        action=AuditEntry.Action.CREATE,
        obj=api_key,
        object_repr=f"API key {api_key.name or api_key.prefix}",
        after=snapshot(api_key, ["name", "prefix", "scopes"]),
    )
    return api_key, raw_key


# Workspace settings ---------------------------------------------------------------------------

SETTINGS_FIELDS = [
    "name",
    "time_zone",
    "goal_event",
    "send_event",
    "open_event",
    "attribution_window_h",
    "habituation_half_life_h",
    "priming_horizon_h",
]
# What the stored memory was computed by: changing any of these makes it stale until a recompute.
MEMORY_FIELDS = SETTINGS_FIELDS[2:]


def workspace_settings_update(
    *, workspace: Workspace, actor: Actor, expected_version: int | None, changes: dict
) -> Workspace:
    """Change the workspace's settings (owners only, checked by the caller); refuse a stale edit."""
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValidationError({name: "This setting does not exist." for name in sorted(unknown)})
    cleaned = {k: v.strip() if isinstance(v, str) else v for k, v in changes.items()}
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=workspace,
        changes=cleaned,
        expected_version=expected_version,
        audited=SETTINGS_FIELDS,
    )


# Members --------------------------------------------------------------------------------------


def _membership_audit(workspace, actor, action, membership, before, after) -> None:
    audit_record(
        workspace=workspace,
        actor=actor,
        action=action,
        obj=membership,
        object_repr=f"member {membership.user.get_username()}",
        before=before,
        after=after,
    )


def _owners_left_after(workspace: Workspace, membership: Membership) -> int:
    # Locked, so two owners demoting each other at once cannot both succeed.
    owners = list(
        Membership.objects.for_workspace(workspace)
        .select_for_update()
        .filter(role=Membership.Role.OWNER)
        .values_list("pk", flat=True)
    )
    return len([pk for pk in owners if pk != membership.pk])


@transaction.atomic
def member_add(*, workspace: Workspace, actor: Actor, username: str, role: str) -> Membership:
    """Give an existing user a role in the workspace, audited."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Choose a role among {Membership.Role.values}."})
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ValidationError({"username": f"No user {username.strip()!r}; they sign up first."})
    if Membership.objects.for_workspace(workspace).filter(user=user).exists():
        raise ValidationError({"username": f"{user.get_username()} is already a member."})
    membership = Membership.objects.create(workspace=workspace, user=user, role=role)
    _membership_audit(workspace, actor, AuditEntry.Action.CREATE, membership, None, {"role": role})
    return membership


@transaction.atomic
def member_role_change(
    *, workspace: Workspace, actor: Actor, membership: Membership, role: str
) -> Membership:
    """Change a member's role, audited; the last owner stays an owner."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Choose a role among {Membership.Role.values}."})
    before = membership.role
    if before == role:
        return membership
    if before == Membership.Role.OWNER and _owners_left_after(workspace, membership) == 0:
        raise ValidationError({"role": "The workspace needs an owner: make another one first."})
    membership.role = role
    membership.save(update_fields=["role"])
    _membership_audit(
        workspace, actor, AuditEntry.Action.UPDATE, membership, {"role": before}, {"role": role}
    )
    return membership


@transaction.atomic
def member_remove(*, workspace: Workspace, actor: Actor, membership: Membership) -> None:
    """Take a member out of the workspace, audited; never the last owner."""
    if membership.is_owner and _owners_left_after(workspace, membership) == 0:
        raise ValidationError({"role": "The workspace needs an owner: make another one first."})
    _membership_audit(
        workspace, actor, AuditEntry.Action.DELETE, membership, {"role": membership.role}, None
    )
    membership.delete()
