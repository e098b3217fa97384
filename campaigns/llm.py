"""The LLM, reached through the openai client at any OpenAI-compatible server.

Every failure becomes an `LlmUnavailable` with a short reason and a sentence for the marketer:
no LLM configured, a time-out, a server error, a connection failure, a malformed answer. Calls
have the client's time-out, no client retries, and an overall deadline on top, so a server that
trickles bytes cannot hold a page or an API request past it.

A call that expects structure (`llm_structured`) asks for it with `response_format` and a JSON
schema (OpenAI, vLLM, Ollama and llama.cpp's server honour it, the local ones by constrained
decoding); a server that refuses the schema is asked for plain JSON mode, then for JSON in
words, read leniently; an answer that still does not fit is asked for once more before the
failure is said (docs/decisions/0006-structured-llm-answers.md).
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


class _FormatRefused(Exception):
    """The server refused the requested response_format (HTTP 400/422/501)."""


def _complete(
    client: openai.OpenAI,
    messages: list[dict],
    temperature: float,
    response_format: dict | None = None,
) -> str:
    timeout = settings.PRIMER_LLM_TIMEOUT_S
    extra = {"response_format": response_format} if response_format else {}
    try:
        response = client.chat.completions.create(
            model=settings.PRIMER_LLM_MODEL, messages=messages, temperature=temperature, **extra
        )
    except openai.APITimeoutError:
        raise LlmUnavailable(
            "timeout", f"The LLM did not answer within {timeout:g} s; try again later."
        ) from None
    except openai.APIStatusError as exc:
        if response_format and exc.status_code in {400, 422, 501}:
            raise _FormatRefused(exc.status_code) from None
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


def _run(calls: list[tuple[list[dict], float]], response_format: dict | None = None) -> list[str]:
    """Run chat calls in parallel under one overall deadline; raise the first failure."""
    client = _client()
    deadline = settings.PRIMER_LLM_TIMEOUT_S + 2.0
    futures = [
        _POOL.submit(_complete, client, messages, temp, response_format) for messages, temp in calls
    ]
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


# What each server accepted last, by base URL: a server that refused the schema is not asked
# with it again until the process restarts.
_ACCEPTED_FORMAT: dict[str, str] = {}
FORMATS = ("json_schema", "json_object", "text")
_JSON_BLOCK_RE = re.compile(r"\{.*\}|\[.*\]", re.DOTALL)


def _response_format(kind: str, name: str, schema: dict) -> dict | None:
    if kind == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
    if kind == "json_object":
        return {"type": "json_object"}
    return None


def _lenient_json(content: str):
    """Read JSON from an answer, tolerating a code fence or words around one JSON value."""
    text = _FENCE_RE.sub("", content.strip())
    try:
        return json.loads(text)
    except ValueError:
        found = _JSON_BLOCK_RE.search(text)
        if found is None:
            raise
        return json.loads(found.group(0))


def schema_problem(value, schema: dict, path: str = "answer") -> str | None:
    """Return why a value does not fit a (small, JSON) schema, or None when it fits."""
    kind = schema.get("type")
    expected = {"object": dict, "array": list, "string": str, "number": (int, float)}.get(kind)
    if expected and not isinstance(value, expected):
        return f"{path} is not a{'n' if kind[0] in 'aeio' else ''} {kind}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path} is not one of the allowed values"
    if kind == "object":
        for key in schema.get("required", []):
            if key not in value:
                return f"{path} has no {key!r}"
        for key, sub in schema.get("properties", {}).items():
            if key in value and (problem := schema_problem(value[key], sub, f"{path}.{key}")):
                return problem
    if kind == "array":
        for index, item in enumerate(value):
            if problem := schema_problem(item, schema.get("items", {}), f"{path}[{index}]"):
                return problem
    return None


def llm_structured(
    *,
    messages: list[dict],
    name: str,
    schema: dict,
    temperature: float = 0.2,
    checked_by: dict | None = None,
) -> dict | list:
    """Ask for an answer that fits the JSON schema, degrading gracefully on weaker servers.

    The answer is checked against `checked_by` (default: the schema asked for). Raises
    LlmUnavailable("malformed_response", …) naming what did not fit after one retry.
    """
    base_url = settings.PRIMER_LLM_BASE_URL or ""
    kinds = FORMATS[FORMATS.index(_ACCEPTED_FORMAT.get(base_url, FORMATS[0])) :]
    problem = "the answer was empty"
    for kind in kinds:
        for _attempt in range(2):  # one retry when the answer does not fit
            try:
                (content,) = _run([(messages, temperature)], _response_format(kind, name, schema))
            except _FormatRefused:
                break  # try the next, weaker format
            _ACCEPTED_FORMAT[base_url] = kind
            try:
                value = _lenient_json(content)
            except ValueError:
                problem = "the answer was not JSON"
                continue
            problem = schema_problem(value, checked_by or schema)
            if problem is None:
                return value
        else:
            break  # the server took this format but twice gave an answer that did not fit
    raise LlmUnavailable(
        "malformed_response",
        f"The LLM's answer did not fit what was asked ({problem}), twice; try again or use a "
        "model that follows JSON schemas.",
    )


DRAFTS_SCHEMA = {
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
                "required": ["subject", "body"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["messages"],
    "additionalProperties": False,
}
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


def drafts_from(value: dict, count: int) -> list[DraftText]:
    """Keep the usable drafts of a schema-checked answer; raise LlmUnavailable if none is."""
    drafts = [
        DraftText(subject=item["subject"].strip()[:500], body=item["body"].strip()[:2000])
        for item in value["messages"]
    ]
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
    answer = llm_structured(messages=messages, name="drafts", schema=DRAFTS_SCHEMA, temperature=0.7)
    return drafts_from(answer, count)


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
    messages = [
        {"role": "system", "content": SUGGEST_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]
    # Constrained decoding keeps a capable server inside the taxonomy; from a weaker one, labels
    # outside it are dropped by the caller rather than failing the whole suggestion.
    loose = {**schema, "properties": {"labels": {"type": "array", "items": {"type": "string"}}}}
    answer = llm_structured(
        messages=messages, name="message_labels", schema=schema, checked_by=loose, temperature=0.0
    )
    return list(answer["labels"])
