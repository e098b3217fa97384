"""Writes for the catalogue: label sets, labels and messages; one use case each."""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils.text import slugify

from campaigns.catalogue.messages import channel_of, label_ref, message_created_audit
from campaigns.models import Label, LabelSet, Message, Workspace
from campaigns.tenancy.changes import Actor


@dataclass
class MessageSpec:
    """A message as another system describes it: key, text and labels by set slug."""

    key: str
    channel: str = ""
    subject: str = ""
    body: str = ""
    labels: dict[str, list[str]] = field(default_factory=dict)


def labels_ensure(*, workspace: Workspace, labels: dict[str, list[str]]) -> list[Label]:
    """Return the labels named by set and slug, creating sets and labels that are missing."""
    wanted = {(slugify(s).replace("-", "_"), slugify(l)) for s, ls in labels.items() for l in ls}
    if not wanted:
        return []
    set_slugs = {set_slug for set_slug, _ in wanted}
    sets = {
        ls.slug: ls for ls in LabelSet.objects.for_workspace(workspace).filter(slug__in=set_slugs)
    }
    missing_sets = [
        LabelSet(
            workspace=workspace,
            slug=slug,
            name=slug.replace("_", " ").capitalize(),
            multiple=slug == LabelSet.CHANNEL,
        )
        for slug in sorted(set_slugs - sets.keys())
    ]
    if missing_sets:
        LabelSet.objects.bulk_create(missing_sets, ignore_conflicts=True)
        sets = {
            ls.slug: ls
            for ls in LabelSet.objects.for_workspace(workspace).filter(slug__in=set_slugs)
        }
    existing = {
        (label.label_set.slug, label.slug): label
        for label in Label.objects.for_workspace(workspace)
        .select_related("label_set")
        .filter(label_set__slug__in=set_slugs)
    }
    missing = [
        Label(
            workspace=workspace,
            label_set=sets[set_slug],
            slug=slug,
            name=slug.replace("-", " ").capitalize(),
        )
        for set_slug, slug in sorted(wanted - existing.keys())
    ]
    if missing:
        Label.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {
            (label.label_set.slug, label.slug): label
            for label in Label.objects.for_workspace(workspace)
            .select_related("label_set")
            .filter(label_set__slug__in=set_slugs)
        }
    return [existing[pair] for pair in sorted(wanted)]


@transaction.atomic
def messages_upsert(
    *, workspace: Workspace, specs: list[MessageSpec], actor: Actor | None = None
) -> list[Message]:
    """Create or update messages by key, with their labels (labels are added, never removed).

    A spec's channel string ("email" or "email+web") names labels of the `channel` set: the
    message's channel is those labels, and its `channel` string is written from them. With an
    actor, each message created is recorded in the audit trail as created by them.
    """
    messages = []
    for spec in specs:
        message, created = Message.objects.for_workspace(workspace).update_or_create(
            workspace=workspace,
            key=spec.key,
            defaults={"subject": spec.subject, "body": spec.body},
        )
        labels = {name: list(slugs) for name, slugs in spec.labels.items()}
        channels = [part.strip() for part in spec.channel.replace(",", "+").split("+")]
        if any(channels):
            labels.setdefault(LabelSet.CHANNEL, []).extend(c for c in channels if c)
        message.labels.add(*labels_ensure(workspace=workspace, labels=labels))
        channel = channel_of(message.labels.select_related("label_set"))
        if message.channel != channel:
            message.channel = channel
            message.save(update_fields=["channel"])
        if created and actor is not None:
            message_created_audit(
                workspace=workspace,
                actor=actor,
                message=message,
                labels=sorted(message.labels.select_related("label_set"), key=label_ref),
            )
        messages.append(message)
    return messages


def label_describe(
    *, workspace: Workspace, label_set: str, slug: str, name: str, prompt_phrase: str = ""
) -> int:
    """Set a label's display name and prompt phrase; return how many labels changed (0 or 1)."""
    return (
        Label.objects.for_workspace(workspace)
        .filter(label_set__slug=label_set, slug=slug)
        .update(name=name, prompt_phrase=prompt_phrase)
    )
