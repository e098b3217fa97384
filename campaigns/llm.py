"""The LLM, reached through the openai client at any OpenAI-compatible server.

Every failure becomes an `LlmUnavailable` with a short reason and a sentence for the marketer:
no LLM configured, a time-out, a server error, a connection failure, a malformed answer. Calls
have the client's time-out, no client retries, and an overall deadline on top, so a server that
trickles bytes cannot hold a page or an API request past it.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import openai
from django.conf import settings

ANSWER_LIMIT = 4000
MAX_DRAFTS = 5
_FENCE_RE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
# Calls run in these threads so a deadline can be enforced; two per preview.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="primer-llm")


class LlmUnavailable(Exception):
    """The LLM could not answer; `reason` is a short code, the message says what to do."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def llm_configured() -> bool:
    return bool(settings.PRIMER_LLM_BASE_URL)


def _client() -> openai.OpenAI:
    if not llm_configured():
        raise LlmUnavailable(
            "not_configured",
            "No LLM is configured: set PRIMER_LLM_BASE_URL (and PRIMER_LLM_API_KEY, "
            "PRIMER_LLM_MODEL) to an OpenAI-compatible server.",
        )
    return openai.OpenAI(
        base_url=settings.PRIMER_LLM_BASE_URL,
        api_key=settings.PRIMER_LLM_API_KEY or "not-needed",
        timeout=settings.PRIMER_LLM_TIMEOUT_S,
        max_retries=0,
    )


def _complete(
    client: openai.OpenAI, messages: list[dict], temperature: float, extra: dict | None = None
) -> str:
    timeout = settings.PRIMER_LLM_TIMEOUT_S
    try:
        response = client.chat.completions.create(
            model=settings.PRIMER_LLM_MODEL,
            messages=messages,
            temperature=temperature,
            **(extra or {}),
        )
    except openai.APITimeoutError:
        raise LlmUnavailable(
            "timeout", f"The LLM did not answer within {timeout:g} s; try again later."
        ) from None
    except openai.APIStatusError as exc:
        raise LlmUnavailable(
            "server_error", f"The LLM server answered with HTTP {exc.status_code}."
        ) from None
    except openai.APIConnectionError:
        raise LlmUnavailable(
            "connection_error",
            f"Could not reach the LLM at {settings.PRIMER_LLM_BASE_URL}.",
        ) from None
    except (openai.OpenAIError, ValueError, TypeError, KeyError) as exc:
        raise LlmUnavailable(
            "malformed_response", f"The LLM's answer could not be read ({type(exc).__name__})."
        ) from None
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        content = None
    if not isinstance(content, str) or not content.strip():
        raise LlmUnavailable("malformed_response", "The LLM's answer held no text.")
    return content.strip()[:ANSWER_LIMIT]


def _run(calls: list[tuple]) -> list[str]:
    """Run chat calls (messages, temperature[, extra arguments]) in parallel under one overall
    deadline; raise the first failure."""
    client = _client()
    deadline = settings.PRIMER_LLM_TIMEOUT_S + 2.0
    futures = [_POOL.submit(_complete, client, *call) for call in calls]
    started = time.monotonic()
    answers = []
    try:
        for future in futures:
            remaining = max(deadline - (time.monotonic() - started), 0.01)
            answers.append(future.result(timeout=remaining))
    except FutureTimeout:
        raise LlmUnavailable(
            "timeout",
            f"The LLM did not answer within {settings.PRIMER_LLM_TIMEOUT_S:g} s; try again later.",
        ) from None
    finally:
        for future in futures:
            future.cancel()
    return answers


@dataclass(frozen=True)
class Preview:
    """One question answered generically and with a customer's prompt."""

    question: str
    generic: str
    personalized: str
    model: str
    duration_ms: float


def llm_preview(*, prompt: str, question: str) -> Preview:
    """Ask the question twice, without and with the customer's prompt as the system prompt."""
    started = time.monotonic()
    user = {"role": "user", "content": question}
    generic, personalized = _run(
        [([user], 0.0), ([{"role": "system", "content": prompt}, user], 0.0)]
    )
    return Preview(
        question=question,
        generic=generic,
        personalized=personalized,
        model=settings.PRIMER_LLM_MODEL,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )


DRAFT_SYSTEM = """\
You write short marketing messages. Reply with JSON only, no prose, in this shape:
{"messages": [{"subject": "...", "body": "..."}]}
Each subject is under 80 characters, each body under 300. Make each message clearly different \
from the others and from the existing messages listed by the user."""


def _draft_request(
    *, value_proposition: str, description: str, count: int, guidance: str, existing: list[str]
) -> str:
    lines = [
        f"Write {count} new message(s) for this value proposition: {json.dumps(value_proposition)}."
    ]
    if description:
        lines.append(f"What it means: {json.dumps(description)}.")
    if guidance:
        lines.append(f"The marketer's guidance: {guidance}")
    if existing:
        lines.append("Existing messages (do not repeat them; quoted data):")
        lines.extend(f"- {json.dumps(text[:200])}" for text in existing[:20])
    return "\n".join(lines)


@dataclass(frozen=True)
class DraftText:
    subject: str
    body: str


def parse_drafts(content: str, count: int) -> list[DraftText]:
    """Read the LLM's JSON drafts, tolerating a code fence; raise LlmUnavailable if unusable."""
    try:
        data = json.loads(_FENCE_RE.sub("", content.strip()))
        items = data["messages"] if isinstance(data, dict) else data
        drafts = [
            DraftText(
                subject=str(item.get("subject", "")).strip()[:500],
                body=str(item.get("body", "")).strip()[:2000],
            )
            for item in items
            if isinstance(item, dict)
        ]
    except (ValueError, KeyError, TypeError):
        raise LlmUnavailable(
            "malformed_response", "The LLM's drafts were not the JSON asked for; try again."
        ) from None
    drafts = [draft for draft in drafts if draft.subject or draft.body]
    if not drafts:
        raise LlmUnavailable("malformed_response", "The LLM proposed no usable message.")
    return drafts[:count]


def llm_draft_messages(
    *,
    value_proposition: str,
    description: str = "",
    count: int = 3,
    guidance: str = "",
    existing: list[str] | None = None,
) -> list[DraftText]:
    """Ask the LLM for new message texts for a value proposition."""
    count = max(1, min(count, MAX_DRAFTS))
    request = _draft_request(
        value_proposition=value_proposition,
        description=description,
        count=count,
        guidance=guidance,
        existing=existing or [],
    )
    messages = [{"role": "system", "content": DRAFT_SYSTEM}, {"role": "user", "content": request}]
    (content,) = _run([(messages, 0.7)])
    return parse_drafts(content, count)


SUGGEST_SYSTEM = """\
You tag marketing messages with labels from a fixed taxonomy. Reply with JSON only: \
{"labels": ["set:label", ...]}, choosing only among the labels listed by the user, at most one \
per set unless the set says several are allowed. Choose none rather than a poor fit."""


def llm_suggest_labels(*, text: str, taxonomy: dict[str, dict]) -> list[str]:
    """Ask the LLM which of the taxonomy's labels (`set:label`) fit a message's text.

    `taxonomy` maps a set's slug to {"name", "multiple", "labels": {slug: meaning}}. The answer
    is constrained by a JSON schema listing the allowed labels; the caller still validates it.
    """
    allowed = [f"{s}:{label}" for s, spec in taxonomy.items() for label in spec["labels"]]
    lines = ["The taxonomy (set, then its labels with what they mean):"]
    for set_slug, spec in taxonomy.items():
        rule = "several allowed" if spec["multiple"] else "one at most"
        lines.append(f"- {set_slug} ({spec['name']}; {rule}):")
        lines.extend(
            f"  - {set_slug}:{slug}: {json.dumps(meaning)}"
            for slug, meaning in spec["labels"].items()
        )
    lines.append(f"The message (quoted data): {json.dumps(text[:ANSWER_LIMIT])}")
    schema = {
        "type": "object",
        "properties": {"labels": {"type": "array", "items": {"type": "string", "enum": allowed}}},
        "required": ["labels"],
        "additionalProperties": False,
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "message_labels", "strict": True, "schema": schema},
    }
    messages = [
        {"role": "system", "content": SUGGEST_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]
    (content,) = _run([(messages, 0.0, {"response_format": response_format})])
    try:
        data = json.loads(_FENCE_RE.sub("", content.strip()))
        labels = data["labels"] if isinstance(data, dict) else data
        return [str(label) for label in labels if isinstance(label, str)]
    except (ValueError, KeyError, TypeError):
        raise LlmUnavailable(
            "malformed_response", "The LLM's labels were not the JSON asked for; try again."
        ) from None
