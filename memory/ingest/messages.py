"""Link events to the messages they name, registering new ones that send events describe."""

from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import Message, Workspace
from memory.ingest.segment import EventRow


def message_ids_resolve(
    *, workspace: Workspace, rows: list[EventRow]
) -> tuple[dict[str, int], set[str]]:
    """Return {message key: id} for the keys the rows name, and the keys registered now.

    A send event naming an unknown key registers that message when it carries
    `properties.text` and/or `properties.labels` (the first such event in the batch wins).
    Other unknown keys stay unresolved: their events keep the key and no message.
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
        for message in messages_upsert(workspace=workspace, specs=list(specs.values())):
            known[message.key] = message.id
    return known, set(specs)
