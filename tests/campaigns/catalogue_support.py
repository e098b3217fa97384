"""Small builders for the catalogue tests: labels and messages made through the services."""

from campaigns.catalogue.labels import label_create
from campaigns.catalogue.messages import labels_resolve, message_create
from campaigns.models import LabelSet
from campaigns.tenancy.changes import Actor

SYSTEM = Actor.system("test")


def make_label(workspace, slug: str, *, set_slug: str = "value_proposition", **fields):
    label_set = LabelSet.objects.for_workspace(workspace).get(slug=set_slug)
    return label_create(
        workspace=workspace,
        actor=SYSTEM,
        label_set=label_set,
        slug=slug,
        name=fields.pop("name", slug.capitalize()),
        **fields,
    )


def make_message(workspace, key: str, subject: str, body: str = "", labels=()):
    return message_create(
        workspace=workspace,
        actor=SYSTEM,
        key=key,
        subject=subject,
        body=body,
        labels=labels_resolve(workspace=workspace, refs=labels),
    )
