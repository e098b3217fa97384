"""Writes for messages: create, edit, archive and restore, with their labels.

A message's labels respect each set's rule (one label of a set unless the set allows several),
and its channel is its labels in the `channel` set: the `channel` string is written here from
them, never edited on its own (docs/decisions/0200-message-channel-is-a-label.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from campaigns.models import AuditEntry, Label, LabelSet, Message, Workspace
from campaigns.tenancy.changes import Actor, audit_record, change_archive, change_update, snapshot

MESSAGE_AUDITED = ["key", "subject", "body", "channel", "active"]
MESSAGE_EDITABLE = {"key", "subject", "body"}
CHANNEL_LENGTH = 64


def label_ref(label: Label) -> str:
    """Return how a label is named outside: `set:slug`."""
    return f"{label.label_set.slug}:{label.slug}"


def channel_of(labels: Iterable[Label]) -> str:
    """Return the channel string a message's labels make: its channel labels' slugs, '+'-joined."""
    slugs = sorted(label.slug for label in labels if label.label_set.slug == LabelSet.CHANNEL)
    return "+".join(slugs)[:CHANNEL_LENGTH]


def labels_resolve(*, workspace: Workspace, refs: Iterable[str]) -> list[Label]:
    """Return the workspace's labels named `set:slug`; raise a `labels` field error naming the
    unknown ones."""
    refs = [ref.strip() for ref in refs if ref and ref.strip()]
    wanted = set()
    malformed = []
    for ref in refs:
        set_slug, sep, slug = ref.partition(":")
        if not sep or not set_slug or not slug:
            malformed.append(ref)
        wanted.add((set_slug.strip(), slug.strip()))
    if malformed:
        raise ValidationError(
            {
                "labels": f"Name labels as set:label, e.g. value_proposition:discount; got "
                f"{', '.join(repr(ref) for ref in malformed)}."
            }
        )
    if not wanted:
        return []
    found = {
        (label.label_set.slug, label.slug): label
        for label in Label.objects.for_workspace(workspace)
        .select_related("label_set")
        .filter(label_set__slug__in={s for s, _ in wanted}, slug__in={l for _, l in wanted})
    }
    unknown = sorted(f"{s}:{l}" for s, l in wanted - found.keys())
    if unknown:
        raise ValidationError({"labels": f"No such label in this workspace: {', '.join(unknown)}."})
    return sorted((found[pair] for pair in wanted), key=label_ref)


def labels_check(
    *, workspace: Workspace, labels: list[Label], carried: Iterable[Label] = ()
) -> None:
    """Refuse labels of another workspace, labels breaking a set's one-or-several rule, and
    newly added retired labels."""
    if any(label.workspace_id != workspace.pk for label in labels):
        raise ValidationError({"labels": "No such label in this workspace."})
    carried_ids = {label.pk for label in carried}
    problems = []
    by_set: dict[int, list[Label]] = {}
    for label in labels:
        by_set.setdefault(label.label_set_id, []).append(label)
        retired = not label.active or not label.label_set.active
        if retired and label.pk not in carried_ids:
            problems.append(f"{label_ref(label)} is retired; restore it before tagging with it.")
    for members in by_set.values():
        label_set = members[0].label_set
        if len(members) > 1 and not label_set.multiple:
            names = ", ".join(label.slug for label in members)
            problems.append(f"A message carries one {label_set.name} label at most; got {names}.")
    if problems:
        raise ValidationError({"labels": problems})


def _message_fields(*, key: str, subject: str, body: str) -> dict:
    fields = {"key": key.strip(), "subject": subject.strip(), "body": body.strip()}
    errors = {}
    if not fields["key"]:
        errors["key"] = "A message needs a key."
    if not (fields["subject"] or fields["body"]):
        errors["body"] = "A message needs a subject or a body."
    if errors:
        raise ValidationError(errors)
    return fields


def _key_taken(key: str) -> ValidationError:
    return ValidationError({"key": f"A message with key {key!r} already exists."})


def message_created_audit(
    *, workspace: Workspace, actor: Actor, message: Message, labels: Iterable[Label]
) -> None:
    """Record a new message in the audit trail: its audited fields and its labels."""
    audit_record(
        workspace=workspace,
        actor=actor,
        action=AuditEntry.Action.CREATE,
        obj=message,
        after=snapshot(message, MESSAGE_AUDITED) | {"labels": [label_ref(x) for x in labels]},
    )


def message_create(
    *,
    workspace: Workspace,
    actor: Actor,
    key: str,
    subject: str = "",
    body: str = "",
    labels: Iterable[Label] = (),
) -> Message:
    """Create a message with its labels; its key is unique in the workspace."""
    fields = _message_fields(key=key, subject=subject, body=body)
    labels = list(labels)
    labels_check(workspace=workspace, labels=labels)
    if Message.objects.for_workspace(workspace).filter(key=fields["key"]).exists():
        raise _key_taken(fields["key"])
    message = Message(workspace=workspace, channel=channel_of(labels), **fields)
    try:
        with transaction.atomic():
            message.full_clean()
            message.save()
            message.labels.set(labels)
            message_created_audit(workspace=workspace, actor=actor, message=message, labels=labels)
    except IntegrityError:
        raise _key_taken(fields["key"]) from None
    return message


def message_update(
    *,
    workspace: Workspace,
    actor: Actor,
    message: Message,
    changes: dict,
    labels: list[Label] | None = None,
    expected_version: int | None,
) -> Message:
    """Edit a message's key, text or labels (None: labels unchanged); refuse a stale edit."""
    unknown = sorted(set(changes) - MESSAGE_EDITABLE)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in unknown})
    merged = {"key": message.key, "subject": message.subject, "body": message.body} | changes
    fields = _message_fields(**merged)
    taken = Message.objects.for_workspace(workspace).filter(key=fields["key"])
    if taken.exclude(pk=message.pk).exists():
        raise _key_taken(fields["key"])
    try:
        with transaction.atomic():
            locked = Message.unscoped.select_for_update().get(pk=message.pk)
            carried = list(locked.labels.select_related("label_set"))
            new_labels = carried if labels is None else list(labels)
            labels_check(workspace=workspace, labels=new_labels, carried=carried)
            saved = change_update(
                workspace=workspace,
                actor=actor,
                obj=locked,
                changes=fields | {"channel": channel_of(new_labels)},
                expected_version=expected_version,
                audited=MESSAGE_AUDITED,
                extra_before={"labels": sorted(label_ref(x) for x in carried)},
                extra_after={"labels": sorted(label_ref(x) for x in new_labels)},
            )
            if labels is not None:
                saved.labels.set(new_labels)
    except IntegrityError:
        raise _key_taken(fields["key"]) from None
    return saved


def message_archive(
    *,
    workspace: Workspace,
    actor: Actor,
    message: Message,
    active: bool,
    expected_version: int | None = None,
) -> Message:
    """Archive (active=False) or restore a message; events that name it keep pointing at it."""
    return change_archive(
        workspace=workspace,
        actor=actor,
        obj=message,
        active=active,
        expected_version=expected_version,
    )
