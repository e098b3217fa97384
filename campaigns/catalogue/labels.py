"""Writes for the taxonomy: label sets and labels, created, described, retired and restored.

Slugs never change once created (prompts, boosts, imports and events name labels by slug), so
a rename changes only the display name. Every change goes through tenancy.changes: versioned,
validated and audited in its own transaction.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from campaigns.models import Label, LabelSet, Message, Workspace
from campaigns.tenancy.changes import Actor, change_archive, change_create, change_update

LABEL_SET_AUDITED = ["slug", "name", "description", "multiple", "active"]
LABEL_AUDITED = [
    "label_set",
    "slug",
    "name",
    "description",
    "prompt_phrase",
    "boost",
    "boost_set_by",
    "active",
]
LABEL_SET_EDITABLE = {"name", "description", "multiple"}
LABEL_EDITABLE = {"name", "description", "prompt_phrase", "boost"}


def _refuse_unknown(changes: dict, editable: set[str]) -> None:
    unknown = sorted(set(changes) - editable)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in unknown})


def _created(*, workspace: Workspace, actor: Actor, obj, audited: list[str], field: str, taken):
    """Create through the audit; a duplicate slug (raced or not) is a field error."""
    if taken.exists():
        raise ValidationError({field: f"{obj.slug!r} is already taken."})
    try:
        with transaction.atomic():
            return change_create(workspace=workspace, actor=actor, obj=obj, audited=audited)
    except IntegrityError:
        raise ValidationError({field: f"{obj.slug!r} is already taken."}) from None


def label_set_create(
    *,
    workspace: Workspace,
    actor: Actor,
    slug: str,
    name: str,
    description: str = "",
    multiple: bool = False,
) -> LabelSet:
    """Create a label set; its slug is unique in the workspace."""
    label_set = LabelSet(
        workspace=workspace,
        slug=slug.strip(),
        name=name.strip(),
        description=description.strip(),
        multiple=multiple,
    )
    return _created(
        workspace=workspace,
        actor=actor,
        obj=label_set,
        audited=LABEL_SET_AUDITED,
        field="slug",
        taken=LabelSet.objects.for_workspace(workspace).filter(slug=label_set.slug),
    )


def _messages_with_several(label_set: LabelSet) -> list[str]:
    """Return the keys of messages carrying more than one label of the set."""
    return list(
        Message.objects.for_workspace(label_set.workspace_id)
        .annotate(in_set=Count("labels", filter=Q(labels__label_set=label_set)))
        .filter(in_set__gt=1)
        .order_by("key")
        .values_list("key", flat=True)[:6]
    )


def label_set_update(
    *,
    workspace: Workspace,
    actor: Actor,
    label_set: LabelSet,
    changes: dict,
    expected_version: int | None,
) -> LabelSet:
    """Rename, describe or change the one-or-several rule of a set (its slug stays)."""
    _refuse_unknown(changes, LABEL_SET_EDITABLE)
    changes = {k: v.strip() if isinstance(v, str) else v for k, v in changes.items()}
    if changes.get("multiple") is False and label_set.multiple:
        several = _messages_with_several(label_set)
        if several:
            raise ValidationError(
                {
                    "multiple": "These messages carry several labels of this set; keep one on "
                    f"each first: {', '.join(several[:5])}{'…' if len(several) > 5 else ''}."
                }
            )
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=label_set,
        changes=changes,
        expected_version=expected_version,
        audited=LABEL_SET_AUDITED,
    )


def label_set_archive(
    *,
    workspace: Workspace,
    actor: Actor,
    label_set: LabelSet,
    active: bool,
    expected_version: int | None = None,
) -> LabelSet:
    """Retire (active=False) or restore a set; its labels and history stay."""
    return change_archive(
        workspace=workspace,
        actor=actor,
        obj=label_set,
        active=active,
        expected_version=expected_version,
    )


def label_create(
    *,
    workspace: Workspace,
    actor: Actor,
    label_set: LabelSet,
    slug: str,
    name: str,
    prompt_phrase: str = "",
    description: str = "",
    boost: float = 0.0,
) -> Label:
    """Create a label in a set of the workspace; its slug is unique in the set."""
    if label_set.workspace_id != workspace.pk:
        raise ValidationError({"label_set": "No such label set in this workspace."})
    label = Label(
        workspace=workspace,
        label_set=label_set,
        slug=slug.strip(),
        name=name.strip(),
        prompt_phrase=prompt_phrase.strip(),
        description=description.strip(),
        boost=boost,
    )
    if boost:
        label.boost_set_by, label.boost_set_at = actor.name[:200], timezone.now()
    return _created(
        workspace=workspace,
        actor=actor,
        obj=label,
        audited=LABEL_AUDITED,
        field="slug",
        taken=Label.objects.for_workspace(workspace).filter(label_set=label_set, slug=label.slug),
    )


def label_update(
    *,
    workspace: Workspace,
    actor: Actor,
    label: Label,
    changes: dict,
    expected_version: int | None,
) -> Label:
    """Rename, rephrase, describe or boost a label; a new boost records who set it and when."""
    _refuse_unknown(changes, LABEL_EDITABLE)
    changes = {k: v.strip() if isinstance(v, str) else v for k, v in changes.items()}
    if "boost" in changes and changes["boost"] != label.boost:
        changes |= {"boost_set_by": actor.name[:200], "boost_set_at": timezone.now()}
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=label,
        changes=changes,
        expected_version=expected_version,
        audited=LABEL_AUDITED,
    )


def label_archive(
    *,
    workspace: Workspace,
    actor: Actor,
    label: Label,
    active: bool,
    expected_version: int | None = None,
) -> Label:
    """Retire (active=False) or restore a label; messages keep it, memory keeps its history."""
    return change_archive(
        workspace=workspace,
        actor=actor,
        obj=label,
        active=active,
        expected_version=expected_version,
    )
