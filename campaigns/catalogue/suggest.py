"""Propose labels for a message's text from the workspace's own taxonomy, by the LLM."""

from __future__ import annotations

from campaigns.catalogue.messages import label_ref
from campaigns.catalogue.selectors import label_choices
from campaigns.llm import llm_suggest_labels
from campaigns.models import Label, Workspace


def labels_suggest(*, workspace: Workspace, text: str) -> list[Label]:
    """Return the active labels the LLM proposes for the text, validated against the taxonomy.

    Anything the LLM names outside the taxonomy is dropped, and a set allowing one label keeps
    only the first proposed. Nothing is applied: the marketer picks. Raises LlmUnavailable.
    """
    labels = [
        label
        for label in label_choices(workspace=workspace)
        if label.active and label.label_set.active
    ]
    if not labels or not text.strip():
        return []
    taxonomy: dict[str, dict] = {}
    for label in labels:
        spec = taxonomy.setdefault(
            label.label_set.slug,
            {"name": label.label_set.name, "multiple": label.label_set.multiple, "labels": {}},
        )
        spec["labels"][label.slug] = label.description or label.phrase
    proposed = llm_suggest_labels(text=text, taxonomy=taxonomy)
    by_ref = {label_ref(label): label for label in labels}
    chosen: list[Label] = []
    for ref in proposed:
        label = by_ref.get(ref.strip())
        if label is None or label in chosen:
            continue
        if not label.label_set.multiple and any(
            other.label_set_id == label.label_set_id for other in chosen
        ):
            continue
        chosen.append(label)
    return chosen
