"""Writes for guardrails and overrides: create, edit, archive, restore; audited and versioned.

One service per use for pages, the API and the config import. Each checks what the model cannot
alone (the fields a kind needs, references inside the workspace, a trait filter against the
customers' traits) and raises ValidationError naming the field; fields a kind does not use are
cleared, so a stored rule says only what it means.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, Guardrail, Label, Message, Override, Workspace
from campaigns.tenancy.changes import Actor, change_archive, change_create, change_update
from memory.audiences import trait_filter_parse
from memory.models import Customer

GUARDRAIL_AUDITED = [
    "name",
    "kind",
    "label",
    "message",
    "campaign",
    "limit",
    "period",
    "audience",
    "event_name",
    "hours",
    "quiet_start",
    "quiet_end",
    "note",
    "active",
]
GUARDRAIL_EDITABLE = set(GUARDRAIL_AUDITED) - {"active"}
OVERRIDE_AUDITED = [
    "customer_external_id",
    "segment",
    "label",
    "action",
    "value",
    "note",
    "expires_at",
    "active",
]
OVERRIDE_EDITABLE = set(OVERRIDE_AUDITED) - {"active"}
# What each kind of guardrail uses; the rest is cleared.
KIND_FIELDS = {
    Guardrail.Kind.FREQUENCY_CAP: {"limit", "period", "label"},
    Guardrail.Kind.ELIGIBILITY: {"audience", "message", "campaign"},
    Guardrail.Kind.AFTER_EVENT: {"event_name", "hours", "label", "message", "campaign"},
    Guardrail.Kind.QUIET_HOURS: {"quiet_start", "quiet_end"},
}
CLEARED = {
    "label": None,
    "message": None,
    "campaign": None,
    "limit": None,
    "period": "",
    "audience": {},
    "event_name": "",
    "hours": None,
    "quiet_start": None,
    "quiet_end": None,
}


def _same_workspace(errors: dict, workspace: Workspace, fields: dict) -> None:
    for name in ("label", "message", "campaign"):
        obj = fields.get(name)
        if obj is not None and obj.workspace_id != workspace.pk:
            errors.setdefault(name, []).append(f"No such {name} in this workspace.")


def _guardrail_checked(workspace: Workspace, fields: dict) -> dict:
    """Return the guardrail's fields, normalised for its kind; raise ValidationError by field."""
    errors: dict[str, list[str]] = {}
    kind = fields.get("kind")
    if kind not in Guardrail.Kind.values:
        raise ValidationError({"kind": f"Choose one of {', '.join(Guardrail.Kind.values)}."})
    if not (fields.get("name") or "").strip():
        errors.setdefault("name", []).append("Name the guardrail (pages and reasons show it).")
    fields = fields | {k: v for k, v in CLEARED.items() if k not in KIND_FIELDS[kind]}
    _same_workspace(errors, workspace, fields)
    if kind == Guardrail.Kind.FREQUENCY_CAP:
        if fields.get("limit") is None or fields["limit"] < 0:
            errors.setdefault("limit", []).append("Give the most sends allowed (0 or more).")
        if fields.get("period") not in Guardrail.Period.values:
            errors.setdefault("period", []).append("Choose day or week.")
    elif kind == Guardrail.Kind.ELIGIBILITY:
        if (fields.get("message") is None) == (fields.get("campaign") is None):
            errors.setdefault("message", []).append("Choose a message or a campaign (one).")
        try:
            audience = trait_filter_parse(fields.get("audience"), workspace=workspace)
        except ValidationError as invalid:
            errors.setdefault("audience", []).extend(invalid.messages)
        else:
            if audience.is_everyone:
                errors.setdefault("audience", []).append(
                    "Give the traits a customer must have: an empty filter is everyone."
                )
            fields["audience"] = audience.as_json()
    elif kind == Guardrail.Kind.AFTER_EVENT:
        if not (fields.get("event_name") or "").strip():
            errors.setdefault("event_name", []).append("Name the event, e.g. Order Completed.")
        fields["event_name"] = (fields.get("event_name") or "").strip()
        if fields.get("hours") is None or fields["hours"] <= 0:
            errors.setdefault("hours", []).append("Give the hours after the event (above 0).")
        scopes = [n for n in ("label", "message", "campaign") if fields.get(n) is not None]
        if len(scopes) > 1:
            errors.setdefault(scopes[1], []).append(
                "Scope the rule to one label, message or campaign (or none: every send)."
            )
    elif kind == Guardrail.Kind.QUIET_HOURS:
        start, end = fields.get("quiet_start"), fields.get("quiet_end")
        if start is None:
            errors.setdefault("quiet_start", []).append("Give the local time quiet hours begin.")
        if end is None:
            errors.setdefault("quiet_end", []).append("Give the local time they end.")
        if start is not None and start == end:
            errors.setdefault("quiet_end", []).append("Quiet hours end at another time.")
    if errors:
        raise ValidationError(errors)
    return fields


def guardrail_create(*, workspace: Workspace, actor: Actor, **fields) -> Guardrail:
    """Create a guardrail, audited."""
    fields = _guardrail_checked(workspace, {"note": "", **fields})
    guardrail = Guardrail(workspace=workspace, created_by=actor.name[:300], **fields)
    return change_create(workspace=workspace, actor=actor, obj=guardrail, audited=GUARDRAIL_AUDITED)


def guardrail_update(
    *,
    workspace: Workspace,
    actor: Actor,
    guardrail: Guardrail,
    changes: dict,
    expected_version: int | None,
) -> Guardrail:
    """Change a guardrail's fields; refuse a stale edit (StaleEdit)."""
    unknown = set(changes) - GUARDRAIL_EDITABLE
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in unknown})
    current = {name: getattr(guardrail, name) for name in GUARDRAIL_EDITABLE}
    fields = _guardrail_checked(workspace, current | changes)
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=guardrail,
        changes=fields,
        expected_version=expected_version,
        audited=GUARDRAIL_AUDITED,
    )


def guardrail_proposed(
    *, workspace: Workspace, actor: Actor, guardrail: Guardrail | None, changes: dict
) -> Guardrail:
    """Return the guardrail these changes would make (unsaved; an edit keeps its id), checked
    as saving would check it (ValidationError naming the field); `active` False: archived."""
    active = changes.pop("active", None)
    if guardrail is None:
        fields = _guardrail_checked(workspace, {"note": "", **changes})
        proposed = Guardrail(workspace=workspace, created_by=actor.name[:300], **fields)
    else:
        unknown = set(changes) - GUARDRAIL_EDITABLE
        if unknown:
            raise ValidationError({name: "This field cannot be changed." for name in unknown})
        current = {name: getattr(guardrail, name) for name in GUARDRAIL_EDITABLE}
        fields = _guardrail_checked(workspace, current | changes)
        proposed = Guardrail(
            pk=guardrail.pk,
            workspace=workspace,
            created_by=guardrail.created_by,
            created_at=guardrail.created_at,
            active=guardrail.active,
            **fields,
        )
    if active is not None:
        proposed.active = active
    return proposed


def guardrail_archive(
    *,
    workspace: Workspace,
    actor: Actor,
    guardrail: Guardrail,
    active: bool,
    expected_version: int | None = None,
) -> Guardrail:
    """Archive (stop applying) or restore a guardrail."""
    return change_archive(
        workspace=workspace,
        actor=actor,
        obj=guardrail,
        active=active,
        expected_version=expected_version,
    )


def _override_checked(workspace: Workspace, fields: dict, *, now: datetime) -> dict:
    """Return the override's fields normalised; raise ValidationError naming the field."""
    errors: dict[str, list[str]] = {}
    customer = (fields.get("customer_external_id") or "").strip()
    fields["customer_external_id"] = customer
    segment = fields.get("segment") or {}
    if customer and segment:
        errors.setdefault("segment", []).append("Choose a customer or a segment, not both.")
    elif customer:
        known = Customer.objects.for_workspace(workspace).filter(external_id=customer).exists()
        if not known:
            errors.setdefault("customer_external_id", []).append(
                f"No customer {customer!r} in this workspace."
            )
        fields["segment"] = {}
    else:
        try:
            parsed = trait_filter_parse(segment, workspace=workspace)
        except ValidationError as invalid:
            errors.setdefault("segment", []).extend(invalid.messages)
        else:
            if parsed.is_everyone:
                errors.setdefault("segment", []).append(
                    "Give a customer or a segment; for everyone, set the label's boost."
                )
            fields["segment"] = parsed.as_json()
    label = fields.get("label")
    if not isinstance(label, Label) or label.workspace_id != workspace.pk:
        errors.setdefault("label", []).append("No such label in this workspace.")
    elif not label.active and fields.get("active", True):
        errors.setdefault("label", []).append(f"The label {label} is retired.")
    action, value = fields.get("action"), fields.get("value")
    if action not in Override.Action.values:
        errors.setdefault("action", []).append(
            f"Choose one of {', '.join(Override.Action.values)}."
        )
    elif action == Override.Action.FORGET:
        fields["value"] = None
    elif value is None or not 0.0 <= value <= 1.0:
        errors.setdefault("value", []).append(
            "Give the weight to pin, from 0 (never) to 1."
            if action == Override.Action.PIN
            else "Give the strength, above 0 and at most 1."
        )
    elif action != Override.Action.PIN and value == 0.0:
        errors.setdefault("value", []).append("Give the strength, above 0 and at most 1.")
    expires = fields.get("expires_at")
    if expires is not None and expires <= now:
        errors.setdefault("expires_at", []).append("The end date is already past.")
    if errors:
        raise ValidationError(errors)
    return fields


@transaction.atomic
def override_create(*, workspace: Workspace, actor: Actor, **fields) -> Override:
    """Create an override, audited; who and when are its provenance."""
    fields = _override_checked(workspace, {"note": "", **fields}, now=timezone.now())
    override = Override(workspace=workspace, created_by=actor.name[:300], **fields)
    return change_create(workspace=workspace, actor=actor, obj=override, audited=OVERRIDE_AUDITED)


def override_update(
    *,
    workspace: Workspace,
    actor: Actor,
    override: Override,
    changes: dict,
    expected_version: int | None,
) -> Override:
    """Change an override; the editor becomes its author (who set it, when), as for a boost."""
    unknown = set(changes) - OVERRIDE_EDITABLE
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in unknown})
    now = timezone.now()
    current = {name: getattr(override, name) for name in OVERRIDE_EDITABLE}
    fields = _override_checked(workspace, current | changes, now=now)
    if any(fields[name] != current[name] for name in fields if name != "note"):
        fields |= {"created_by": actor.name[:300], "created_at": now}
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=override,
        changes=fields,
        expected_version=expected_version,
        audited=OVERRIDE_AUDITED,
    )


def override_proposed(
    *, workspace: Workspace, actor: Actor, override: Override | None, changes: dict
) -> Override:
    """Return the override these changes would make (unsaved; an edit keeps its id), checked
    as saving would check it (ValidationError naming the field); `active` False: archived."""
    active = changes.pop("active", None)
    now = timezone.now()
    if override is None:
        fields = _override_checked(workspace, {"note": "", **changes}, now=now)
        proposed = Override(workspace=workspace, created_by=actor.name[:300], **fields)
    else:
        unknown = set(changes) - OVERRIDE_EDITABLE
        if unknown:
            raise ValidationError({name: "This field cannot be changed." for name in unknown})
        current = {name: getattr(override, name) for name in OVERRIDE_EDITABLE}
        fields = _override_checked(
            workspace, current | changes | {"active": active is not False}, now=now
        )
        fields.pop("active")
        proposed = Override(
            pk=override.pk,
            workspace=workspace,
            created_by=actor.name[:300],
            created_at=now,
            active=override.active,
            **fields,
        )
    if active is not None:
        proposed.active = active
    return proposed


def override_archive(
    *,
    workspace: Workspace,
    actor: Actor,
    override: Override,
    active: bool,
    expected_version: int | None = None,
) -> Override:
    """Archive (stop applying) or restore an override."""
    return change_archive(
        workspace=workspace,
        actor=actor,
        obj=override,
        active=active,
        expected_version=expected_version,
    )


def message_or_campaign(workspace: Workspace, *, message: str = "", campaign: str = ""):
    """Resolve a message key and a campaign slug in the workspace (None where blank)."""
    errors, found = {}, {"message": None, "campaign": None}
    if message:
        found["message"] = Message.objects.for_workspace(workspace).filter(key=message).first()
        if found["message"] is None:
            errors["message"] = f"No message {message!r} in this workspace."
    if campaign:
        found["campaign"] = Campaign.objects.for_workspace(workspace).filter(slug=campaign).first()
        if found["campaign"] is None:
            errors["campaign"] = f"No campaign {campaign!r} in this workspace."
    if errors:
        raise ValidationError(errors)
    return found
