"""Draft new messages for a value proposition, each with its closeness to existing messages."""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.llm import llm_draft_messages
from campaigns.models import Label, Message, Workspace
from campaigns.prompts.similarity import closest_messages

EXAMPLES_FOR_LLM = 20


@dataclass(frozen=True)
class Draft:
    subject: str
    body: str
    similarity: float
    most_similar_message: str
    risk: str

    @property
    def text(self) -> str:
        return "\n".join(part for part in (self.subject, self.body) if part)


def message_drafts_propose(
    *, workspace: Workspace, label: Label, count: int = 3, guidance: str = ""
) -> list[Draft]:
    """Ask the LLM for new texts carrying the label, and score each against existing messages."""
    messages = Message.objects.for_workspace(workspace).prefetch_related("labels").order_by("key")
    existing = [
        (message.key, message.text, any(lab.pk == label.pk for lab in message.labels.all()))
        for message in messages
    ]
    same_label = [text for _, text, carries in existing if carries and text]
    texts = llm_draft_messages(
        value_proposition=label.phrase,
        description=label.description,
        count=count,
        guidance=guidance,
        existing=same_label[:EXAMPLES_FOR_LLM],
    )
    joined = ["\n".join(part for part in (t.subject, t.body) if part) for t in texts]
    closest = closest_messages(joined, [(key, text) for key, text, _ in existing if text])
    return [
        Draft(t.subject, t.body, c.similarity, c.message_key, c.risk)
        for t, c in zip(texts, closest, strict=True)
    ]
