"""How every configuration change is made: by an actor, versioned, audited in its transaction.

Services of the catalogue, settings, members, keys and webhooks change objects only through
`change_create`, `change_update` and `change_archive` (or record with `audit_record` what they
did set-based), so a form, the API, a bulk import and a command are all audited alike, and an
edit made from a stale copy is refused instead of silently overwriting someone else's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from django.db import models, transaction
from django.utils import timezone

from campaigns.models import ApiKey, AuditEntry, Workspace

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a signed-in user, an API key, or the system (commands, imports)."""

    user: object | None = None
    api_key: ApiKey | None = None
    name: str = SYSTEM

    @classmethod
    def of_user(cls, user) -> Actor:
        return cls(user=user, name=user.get_username())

    @classmethod
    def of_api_key(cls, api_key: ApiKey) -> Actor:
        label = f"{api_key.name} ({api_key.prefix}…)" if api_key.name else f"{api_key.prefix}…"
        return cls(api_key=api_key, name=f"API key {label}")

    @classmethod
    def system(cls, name: str = SYSTEM) -> Actor:
        return cls(name=name)


class StaleEdit(Exception):
    """The object changed since the editor read it (its version moved on)."""

    def __init__(self, obj: models.Model, expected: int):
        self.current_version = obj.version
        self.expected = expected
        super().__init__(
            f"{type(obj).__name__} {obj} was changed by someone else meanwhile (version "
            f"{obj.version}, you edited version {expected}); reload it and apply your change again."
        )


def _plain(value):
    """Return a JSON-friendly copy of a field value, for the audit's before and after."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict:
    """Return the named fields of an object as plain values (a foreign key as its id)."""
    values = {}
    for name in fields:
        field = obj._meta.get_field(name)
        concrete_relation = field.concrete and field.is_relation
        values[name] = _plain(getattr(obj, field.attname if concrete_relation else name))
    return values


def audit_record(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    """Record one change in the workspace's audit trail (call inside the change's transaction)."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    return AuditEntry.objects.create(
        workspace=workspace,
        user=actor.user if getattr(actor.user, "pk", None) else None,
        api_key=actor.api_key,
        actor=actor.name[:300],
        action=action,
        object_type=object_type[:64],
        object_id=object_id[:64],
        object_repr=object_repr[:300],
        before=before,
        after=after,
    )


@transaction.atomic
def change_create(
    *, workspace: Workspace, actor: Actor, obj: models.Model, audited: Iterable[str]
) -> models.Model:
    """Validate and save a new object, and audit it with the named fields."""
    obj.full_clean()
    obj.save()
    audit_record(
        workspace=workspace,
        actor=actor,
        action=AuditEntry.Action.CREATE,
        obj=obj,
        after=snapshot(obj, audited),
    )
    return obj


@transaction.atomic
def change_update(
    *,
    workspace: Workspace,
    actor: Actor,
    obj: models.Model,
    changes: dict,
    expected_version: int | None,
    audited: Iterable[str],
    action: str = AuditEntry.Action.UPDATE,
    extra_before: dict | None = None,
    extra_after: dict | None = None,
) -> models.Model:
    """Apply field changes to a locked fresh copy, refuse a stale edit, bump the version, audit.

    `expected_version` is the version the editor read (None: a command that means "whatever is
    there now"). `extra_before`/`extra_after` carry what is not a field (e.g. a message's labels).
    Returns the saved object; raises StaleEdit or ValidationError without saving anything.
    """
    audited = list(audited)
    model = type(obj)
    fresh = model._default_manager.select_for_update().get(pk=obj.pk)
    if expected_version is not None and fresh.version != expected_version:
        raise StaleEdit(fresh, expected_version)
    before = snapshot(fresh, audited) | (extra_before or {})
    for name, value in changes.items():
        setattr(fresh, name, value)
    fresh.full_clean()
    fresh.version += 1
    if any(field.name == "updated_at" for field in model._meta.concrete_fields):
        fresh.updated_at = timezone.now()
    fresh.save()
    after = snapshot(fresh, audited) | (extra_after or {})
    if before != after:
        audit_record(
            workspace=workspace, actor=actor, action=action, obj=fresh, before=before, after=after
        )
    return fresh


def change_archive(
    *,
    workspace: Workspace,
    actor: Actor,
    obj: models.Model,
    active: bool,
    expected_version: int | None = None,
) -> models.Model:
    """Archive (active=False) or restore an object; history that refers to it stays intact."""
    action = AuditEntry.Action.RESTORE if active else AuditEntry.Action.ARCHIVE
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=obj,
        changes={"active": active},
        expected_version=expected_version,
        audited=["active"],
        action=action,
    )
