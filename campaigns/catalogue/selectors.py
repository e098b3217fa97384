"""Reads for the catalogue: label sets, labels and messages."""

from django.db.models import Count, Prefetch, QuerySet

from campaigns.models import Label, LabelSet, Message, Workspace


def label_sets_with_labels(*, workspace: Workspace) -> QuerySet[LabelSet]:
    """Return the workspace's label sets, each with its labels and how many messages carry them."""
    labels = Label.objects.for_workspace(workspace).annotate(message_count=Count("messages"))
    return (
        LabelSet.objects.for_workspace(workspace)
        .prefetch_related(Prefetch("labels", queryset=labels))
        .order_by("slug")
    )


def messages_with_labels(*, workspace: Workspace) -> QuerySet[Message]:
    """Return the workspace's messages with their labels."""
    labels = Label.objects.for_workspace(workspace).select_related("label_set")
    return (
        Message.objects.for_workspace(workspace)
        .prefetch_related(Prefetch("labels", queryset=labels))
        .order_by("key")
    )
