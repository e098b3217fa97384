"""Per-workspace caps on the label sets and labels that send events may create.

A send event describing a new message registers its labels (see `messages`); without a cap a
sender (or a bug looping over ids) could create any number of them, and every page, prompt
and recompute would carry them. An event that would pass a cap is rejected with the reason;
the others are stored. The cap is checked against what is stored when the batch is read, so
concurrent batches may overshoot it by what each of them adds.
"""

from django.conf import settings
from django.utils.text import slugify

from campaigns.models import Label, LabelSet, Message, Workspace
from memory.ingest.segment import EventRow, Rejection


def rows_within_label_caps(
    *, workspace: Workspace, rows: list[EventRow], rejections: list[Rejection]
) -> tuple[list[EventRow], list[Rejection]]:
    """Return the rows that stay within PRIMER_MAX_LABEL_SETS/_LABELS, and all rejections."""
    registering = [r for r in rows if r.message_key and r.message_labels]
    if not registering:
        return rows, rejections
    known = set(
        Message.objects.for_workspace(workspace)
        .filter(key__in={r.message_key for r in registering})
        .values_list("key", flat=True)
    )
    sets = set(LabelSet.objects.for_workspace(workspace).values_list("slug", flat=True))
    labels = set(Label.objects.for_workspace(workspace).values_list("label_set__slug", "slug"))
    max_sets, max_labels = settings.PRIMER_MAX_LABEL_SETS, settings.PRIMER_MAX_LABELS
    described: set[str] = set()
    refused: dict[int, Rejection] = {}
    for row in rows:
        key = row.message_key
        # Only the first event describing an unknown message registers it (see `messages`).
        if not key or key in known or key in described:
            continue
        if not (row.message_text or row.message_labels):
            continue
        wanted = {
            (slugify(set_slug).replace("-", "_"), slugify(slug))
            for set_slug, slugs in row.message_labels.items()
            for slug in slugs
        }
        new_sets = {set_slug for set_slug, _ in wanted} - sets
        new_labels = wanted - labels
        if new_sets and len(sets) + len(new_sets) > max_sets:
            refused[row.index] = Rejection(
                row.index,
                "properties.labels",
                f"would create label set(s) {', '.join(sorted(new_sets))}; the workspace "
                f"has {len(sets)} of its {max_sets} (PRIMER_MAX_LABEL_SETS)",
            )
        elif new_labels and len(labels) + len(new_labels) > max_labels:
            refused[row.index] = Rejection(
                row.index,
                "properties.labels",
                f"would create {len(new_labels)} label(s); the workspace has {len(labels)} "
                f"of its {max_labels} (PRIMER_MAX_LABELS)",
            )
        else:
            described.add(key)
            sets |= new_sets
            labels |= new_labels
    if not refused:
        return rows, rejections
    kept = [row for row in rows if row.index not in refused]
    return kept, sorted([*rejections, *refused.values()], key=lambda r: r.index)
