"""Reads for the catalogue: label sets, labels and messages, their stats and near-duplicates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Prefetch, Q, QuerySet

from campaigns.models import Label, LabelSet, Message, Workspace
from memory.catalogue_stats import CatalogueStats, catalogue_stats
from memory.scoring.habituation import tfidf_similarity

# A label carried by fewer active messages than this is a content gap: the engine can hardly
# tell the label's effect from the few texts' own (docs/decisions/0201-...).
CONTENT_GAP_MIN_MESSAGES = 3
# From this cosine similarity up, a text is a near-duplicate: the drafts page's "high" risk.
NEAR_DUPLICATE_SIMILARITY = 0.6
SIMILAR_LIMIT = 5


def label_sets_with_labels(*, workspace: Workspace) -> QuerySet[LabelSet]:
    """Return the workspace's label sets, each with its labels and how many messages carry them."""
    labels = Label.objects.for_workspace(workspace).annotate(message_count=Count("messages"))
    return (
        LabelSet.objects.for_workspace(workspace)
        .prefetch_related(Prefetch("labels", queryset=labels))
        .order_by("slug")
    )


def labels_with_counts(*, workspace: Workspace) -> QuerySet[Label]:
    """Return the workspace's labels with how many active messages carry each."""
    return (
        Label.objects.for_workspace(workspace)
        .select_related("label_set")
        .annotate(message_count=Count("messages", filter=Q(messages__active=True)))
    )


def _named(rows: QuerySet, q: str) -> QuerySet:
    return rows.filter(Q(slug__icontains=q) | Q(name__icontains=q)) if q else rows


def label_sets_filtered(
    *, workspace: Workspace, active: bool | None = None, q: str = ""
) -> QuerySet[LabelSet]:
    """Return the workspace's label sets, active or retired, whose slug or name contains q."""
    sets = LabelSet.objects.for_workspace(workspace)
    if active is not None:
        sets = sets.filter(active=active)
    return _named(sets, q)


def labels_filtered(
    *, workspace: Workspace, label_set: str = "", active: bool | None = None, q: str = ""
) -> QuerySet[Label]:
    """Return labels (with active message counts) of a set, active or retired, named like q."""
    labels = labels_with_counts(workspace=workspace)
    if label_set:
        labels = labels.filter(label_set__slug=label_set)
    if active is not None:
        labels = labels.filter(active=active)
    return _named(labels, q)


@dataclass(frozen=True)
class LabelRow:
    label: Label
    message_count: int
    rate: float | None
    lift: float | None
    sends: float
    favoured_by: int

    @property
    def rate_percent(self) -> float | None:
        return None if self.rate is None else self.rate * 100

    @property
    def content_gap(self) -> bool:
        return self.label.active and self.message_count < CONTENT_GAP_MIN_MESSAGES


@dataclass(frozen=True)
class TaxonomyOverview:
    sets: list[tuple[LabelSet, list[LabelRow]]]
    stats: CatalogueStats


def taxonomy_overview(*, workspace: Workspace) -> TaxonomyOverview:
    """Return every set with its labels, each with message count and the last run's numbers."""
    stats = catalogue_stats(workspace=workspace)
    by_set: dict[int, list[LabelRow]] = {}
    for label in labels_with_counts(workspace=workspace).order_by("slug"):
        found = stats.of(label.pk)
        by_set.setdefault(label.label_set_id, []).append(
            LabelRow(
                label=label,
                message_count=label.message_count,
                rate=found.rate,
                lift=found.lift,
                sends=found.sends,
                favoured_by=found.favoured_by,
            )
        )
    # Active sets first, the value propositions leading: they are what the marketer tunes most.
    sets = sorted(
        LabelSet.objects.for_workspace(workspace),
        key=lambda s: (not s.active, s.slug != LabelSet.VALUE_PROPOSITION, s.slug),
    )
    return TaxonomyOverview(
        sets=[(label_set, by_set.get(label_set.pk, [])) for label_set in sets], stats=stats
    )


def label_choices(*, workspace: Workspace) -> QuerySet[Label]:
    """Return the labels a message may be tagged with, in set order."""
    return (
        Label.objects.for_workspace(workspace)
        .select_related("label_set")
        .order_by("label_set__slug", "slug")
    )


def messages_with_labels(*, workspace: Workspace) -> QuerySet[Message]:
    """Return the workspace's messages with their labels."""
    labels = Label.objects.for_workspace(workspace).select_related("label_set")
    return (
        Message.objects.for_workspace(workspace)
        .prefetch_related(Prefetch("labels", queryset=labels))
        .order_by("key")
    )


def messages_filtered(
    *,
    workspace: Workspace,
    label: str = "",
    label_set: str = "",
    active: bool | None = None,
    q: str = "",
) -> QuerySet[Message]:
    """Return messages carrying a label (`set:slug`) or any label of a set, active or not,
    whose key, subject or body contains q."""
    messages = messages_with_labels(workspace=workspace)
    if label:
        set_slug, _, slug = label.partition(":")
        messages = messages.filter(labels__label_set__slug=set_slug, labels__slug=slug)
    if label_set:
        messages = messages.filter(labels__label_set__slug=label_set).distinct()
    if active is not None:
        messages = messages.filter(active=active)
    if q:
        messages = messages.filter(
            Q(key__icontains=q) | Q(subject__icontains=q) | Q(body__icontains=q)
        )
    return messages


@dataclass(frozen=True)
class Similar:
    """An existing message and how close a text is to it (cosine, 0 to 1)."""

    message: Message
    similarity: float

    @property
    def near_duplicate(self) -> bool:
        return self.similarity >= NEAR_DUPLICATE_SIMILARITY


def messages_similar(
    *,
    workspace: Workspace,
    text: str,
    exclude_id: int | None = None,
    limit: int = SIMILAR_LIMIT,
) -> list[Similar]:
    """Return the active messages nearest to a text, by the habituation engine's similarity."""
    if not text.strip():
        return []
    candidates = [
        message
        for message in Message.objects.for_workspace(workspace)
        .filter(active=True)
        .exclude(pk=exclude_id)
        .only("pk", "key", "subject", "body")
        .order_by("key")
        if message.text.strip()
    ]
    if not candidates:
        return []
    matrix = tfidf_similarity([text, *(message.text for message in candidates)])
    row = np.clip(matrix.getrow(0).toarray().ravel()[1:], 0.0, 1.0)
    order = np.argsort(-row, kind="stable")[:limit]
    return [Similar(candidates[i], round(float(row[i]), 3)) for i in order if row[i] > 0.0]
