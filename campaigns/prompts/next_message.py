"""Draft the next message for one customer, and check each draft before anyone sees it.

The LLM gets the customer's own prompt as the system prompt (plus the reply format) and the
brief as the user turn: a campaign's guidance, or a value proposition's phrase and meaning.
Each draft is then checked: the habituation load it would carry for this customer (the
engine's similarity to what they received lately, decayed with the workspace's half-life) with
the nearest recent message, the labels the taxonomy suggests for it, and the guardrails that
would apply to sending it now (docs/decisions/0401-next-message-drafts.md).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.catalogue.messages import label_ref, labels_resolve, message_create
from campaigns.catalogue.suggest import labels_suggest
from campaigns.llm import DRAFTS_SCHEMA, MAX_DRAFTS, LlmUnavailable, drafts_from, llm_structured
from campaigns.models import Campaign, Label, LabelSet, Message, Workspace
from campaigns.prompts.engine import RenderedPrompt
from campaigns.prompts.selectors import prompt_choice, prompt_for_customer
from campaigns.prompts.similarity import risk_word
from campaigns.tenancy.changes import Actor
from memory.models import Customer, Event
from memory.scoring.guardrails import Candidate, guardrail_exclusions
from memory.scoring.habituation import LOOKBACK_TAUS, tfidf_similarity
from memory.strategy import customer_moment, guardrail_rules

RECENT_SENDS = 50  # the customer's latest sends a draft is compared with
NEXT_FORMAT = """\
Write the next message for this customer, following the brief in the user's turn. Reply with \
JSON only, no prose, in this shape: {"messages": [{"subject": "...", "body": "..."}]}. Each \
subject is under 80 characters, each body under 300. Make the messages clearly different from \
each other and from what this customer received lately."""


@dataclass(frozen=True)
class NextBrief:
    """What the draft is for: a campaign or a value proposition, and the words the LLM gets."""

    source: str  # "campaign:<slug>" or "value_proposition:<slug>"
    text: str
    campaign: Campaign | None = None
    label: Label | None = None


@dataclass(frozen=True)
class RecentSend:
    key: str
    text: str
    sent_at: datetime


@dataclass(frozen=True)
class GuardrailCheck:
    """Whether sending the draft now would pass the workspace's guardrails, and why not."""

    allowed: bool
    reasons: list[str]
    rules: int  # how many active guardrails were checked

    def as_dict(self) -> dict:
        return {"allowed": self.allowed, "reasons": self.reasons, "rules_checked": self.rules}


@dataclass
class CheckedDraft:
    subject: str
    body: str
    load: float  # the habituation load it would carry for this customer
    risk: str
    nearest_key: str  # the most similar of the customer's recent messages ('' without any)
    nearest_similarity: float
    nearest_sent_at: datetime | None
    labels: list[str] = field(default_factory=list)  # suggested, `set:label`
    labels_problem: str = ""
    guardrails: GuardrailCheck | None = None

    @property
    def text(self) -> str:
        return "\n".join(part for part in (self.subject, self.body) if part)

    def as_dict(self) -> dict:
        return {
            "subject": self.subject,
            "body": self.body,
            "habituation": {
                "load": self.load,
                "risk": self.risk,
                "nearest_message": self.nearest_key or None,
                "nearest_similarity": self.nearest_similarity,
                "nearest_sent_at": self.nearest_sent_at,
            },
            "labels": self.labels,
            "labels_problem": self.labels_problem,
            "guardrails": self.guardrails.as_dict() if self.guardrails else None,
        }


@dataclass
class NextMessages:
    customer_id: str
    brief: NextBrief
    prompt: RenderedPrompt
    load_as_of: datetime
    drafts: list[CheckedDraft]


def next_message_brief(
    *, workspace: Workspace, campaign: str = "", value_proposition: str = ""
) -> NextBrief:
    """Return the brief of a campaign (slug) or a value proposition (label slug); exactly one.

    Raises ValidationError naming the field.
    """
    if bool(campaign) == bool(value_proposition):
        raise ValidationError(
            {"campaign": "Choose a campaign or a value proposition (one of the two)."}
        )
    if campaign:
        found = Campaign.objects.for_workspace(workspace).filter(slug=campaign).first()
        if found is None:
            raise ValidationError({"campaign": f"No campaign {campaign!r} in this workspace."})
        lines = [
            f"Write the next message for this customer in the campaign {json.dumps(found.name)}."
        ]
        if found.guidance.strip():
            lines.append(f"The marketer's guidance: {found.guidance.strip()}")
        return NextBrief(f"campaign:{found.slug}", "\n".join(lines), campaign=found)
    label = (
        Label.objects.for_workspace(workspace)
        .select_related("label_set")
        .filter(label_set__slug=LabelSet.VALUE_PROPOSITION, slug=value_proposition, active=True)
        .first()
    )
    if label is None:
        raise ValidationError(
            {"value_proposition": f"No value proposition {value_proposition!r} in this workspace."}
        )
    lines = [
        "Write the next message for this customer for this value proposition: "
        f"{json.dumps(label.phrase or label.name)}."
    ]
    if label.description.strip():
        lines.append(f"What it means: {json.dumps(label.description.strip())}.")
    return NextBrief(f"value_proposition:{label.slug}", "\n".join(lines), label=label)


def recent_sends(*, workspace: Workspace, customer: Customer, before: datetime) -> list[RecentSend]:
    """Return the customer's latest sends before a time, newest first, with their texts."""
    lookback = timedelta(hours=LOOKBACK_TAUS * workspace.habituation_half_life_h / math.log(2))
    rows = list(
        Event.objects.for_workspace(workspace)
        .filter(
            customer=customer,
            name=workspace.send_event,
            message__isnull=False,
            occurred_at__lt=before,
            occurred_at__gte=before - lookback,
        )
        .order_by("-occurred_at")
        .values_list("message_id", "occurred_at")[:RECENT_SENDS]
    )
    texts = {
        pk: (key, "\n".join(part for part in (subject, body) if part))
        for pk, key, subject, body in Message.objects.for_workspace(workspace)
        .filter(pk__in={message_id for message_id, _ in rows})
        .values_list("pk", "key", "subject", "body")
    }
    return [RecentSend(*texts[message_id], at) for message_id, at in rows if message_id in texts]


def draft_loads(
    drafts: list[str], recent: list[RecentSend], *, at: datetime, half_life_h: float
) -> list[tuple[float, int | None, float]]:
    """Return per draft (load, index of the most similar recent send, its similarity).

    The load is the engine's: the sum over recent sends of similarity x exp(-age / tau),
    tau = half-life / ln 2, as if the draft were sent at `at`.
    """
    if not recent:
        return [(0.0, None, 0.0) for _ in drafts]
    similarity = (
        tfidf_similarity([*drafts, *(send.text for send in recent)])
        .tocsr()[: len(drafts), len(drafts) :]
        .toarray()
    )
    similarity = np.clip(similarity, 0.0, 1.0)
    tau = half_life_h / math.log(2)
    ages = np.array([(at - send.sent_at).total_seconds() / 3600.0 for send in recent])
    decay = np.exp(-np.maximum(ages, 0.0) / tau)
    results = []
    for row in similarity:
        nearest = int(np.argmax(row))
        results.append((round(float(row @ decay), 3), nearest, round(float(row[nearest]), 3)))
    return results


def _guardrails(workspace, customer, brief: NextBrief, label_ids: set[int]) -> GuardrailCheck:
    rules = guardrail_rules(workspace=workspace)
    moment = customer_moment(workspace=workspace, customer=customer, rules=rules)
    candidate = Candidate(
        message_id=0,
        key="draft",
        label_ids=frozenset(label_ids),
        campaign_ids=frozenset({brief.campaign.pk} if brief.campaign else ()),
    )
    verdict = guardrail_exclusions([candidate], moment, rules)
    reasons = [f"{exclusion.rule_name}: {exclusion.reason}" for exclusion in verdict.excluded]
    return GuardrailCheck(allowed=not verdict.excluded, reasons=reasons, rules=len(rules))


def next_message_drafts(
    *,
    workspace: Workspace,
    external_id: str,
    campaign: str = "",
    value_proposition: str = "",
    count: int = 3,
) -> NextMessages | None:
    """Draft the next message for a customer and check each draft; None for no such customer.

    Raises ValidationError for a missing or unknown brief, LlmUnavailable when the LLM cannot
    draft (a failed label suggestion is reported on the draft instead).
    """
    brief = next_message_brief(
        workspace=workspace, campaign=campaign, value_proposition=value_proposition
    )
    customer = Customer.objects.for_workspace(workspace).filter(external_id=external_id).first()
    if customer is None:
        return None
    choice = prompt_choice(
        workspace=workspace, campaign=brief.campaign.slug if brief.campaign else None
    )
    prompt, _ = prompt_for_customer(workspace=workspace, external_id=external_id, choice=choice)
    count = max(1, min(count, MAX_DRAFTS))
    answer = llm_structured(
        messages=[
            {"role": "system", "content": f"{prompt.text}\n{NEXT_FORMAT}"},
            {"role": "user", "content": f"{brief.text}\nWrite {count} message(s)."},
        ],
        name="next_messages",
        schema=DRAFTS_SCHEMA,
        temperature=0.7,
    )
    texts = drafts_from(answer, count)
    # Loads are measured at the customer's memory time, the prompt's own "now".
    at = prompt.memory_at or timezone.now()
    recent = recent_sends(workspace=workspace, customer=customer, before=at)
    joined = ["\n".join(part for part in (t.subject, t.body) if part) for t in texts]
    loads = draft_loads(joined, recent, at=at, half_life_h=workspace.habituation_half_life_h)
    drafts = []
    for text, joined_text, (load, nearest, similarity) in zip(texts, joined, loads, strict=True):
        draft = CheckedDraft(
            subject=text.subject,
            body=text.body,
            load=load,
            risk=risk_word(similarity),
            nearest_key="" if nearest is None else recent[nearest].key,
            nearest_similarity=similarity,
            nearest_sent_at=None if nearest is None else recent[nearest].sent_at,
        )
        try:
            suggested = labels_suggest(workspace=workspace, text=joined_text)
        except LlmUnavailable as unavailable:
            suggested, draft.labels_problem = [], unavailable.message
        if brief.label is not None and brief.label not in suggested:
            # The value proposition it was written for is carried whatever the LLM proposes.
            suggested = [
                label for label in suggested if label.label_set_id != brief.label.label_set_id
            ]
            suggested.append(brief.label)
        draft.labels = sorted(label_ref(label) for label in suggested)
        draft.guardrails = _guardrails(
            workspace, customer, brief, {label.pk for label in suggested}
        )
        drafts.append(draft)
    return NextMessages(external_id, brief, prompt, at, drafts)


def next_message_save(
    *, workspace: Workspace, actor: Actor, key: str, subject: str, body: str, labels: list[str]
) -> Message:
    """Save a draft as a message with the chosen labels (`set:label`), audited.

    Raises ValidationError naming the field (a taken key, an unknown label, a set's rule).
    """
    return message_create(
        workspace=workspace,
        actor=actor,
        key=key,
        subject=subject,
        body=body,
        labels=labels_resolve(workspace=workspace, refs=labels),
    )
