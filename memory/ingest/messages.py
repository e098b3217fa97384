"""Link events to the messages they name, registering new ones that send events describe."""

from campaigns.catalogue.services import MessageSpec, labels_ensure, messages_upsert
from campaigns.models import Message, Workspace
from campaigns.tenancy.changes import Actor
from memory.ingest.segment import EventRow


def message_ids_resolve(
    *, workspace: Workspace, rows: list[EventRow]
) -> tuple[dict[str, int], set[str]]:
    """Return {message key: id} for the keys the rows name, and the keys registered now.

    A send event naming an unknown key registers that message when it carries
    `properties.text` and/or `properties.labels` (the first such event in the batch wins),
    recorded in the audit trail as created by "ingestion". Other unknown keys stay unresolved:
    their events keep the key and no message.
    """
    keys = {row.message_key for row in rows if row.message_key}
    if not keys:
        return {}, set()
    known = dict(
        Message.objects.for_workspace(workspace).filter(key__in=keys).values_list("key", "id")
    )
    specs: dict[str, MessageSpec] = {}
    for row in rows:
        key = row.message_key
        if (
            key
            and key not in known
            and key not in specs
            and (row.message_text or row.message_labels)
        ):
            specs[key] = MessageSpec(
                key=key,
                channel=row.message_channel[:64],
                body=row.message_text,
                labels=row.message_labels,
            )
    if specs:
        # Concurrent batches must take their locks in one order or they deadlock: every new
        # label of the batch first, in one sorted statement, then the messages by key.
        every_label: dict[str, set[str]] = {}
        for spec in specs.values():
            for set_slug, slugs in spec.labels.items():
                every_label.setdefault(set_slug, set()).update(slugs)
        if every_label:
            labels_ensure(
                workspace=workspace,
                labels={set_slug: sorted(slugs) for set_slug, slugs in every_label.items()},
            )
        ordered = [specs[key] for key in sorted(specs)]
        registered = messages_upsert(
            workspace=workspace, specs=ordered, actor=Actor.system("ingestion")
        )
        for message in registered:
            known[message.key] = message.id
    return known, set(specs)
