"""Factories for derived memory rows, and small HTTP servers: a fake LLM and a webhook receiver.

The memory engine fills CustomerState, CustomerLabelWeight, CustomerMessageHabituation and
PrimingIndicator; these tests create the same rows directly.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import Label, LabelSet, Message
from memory.models import (
    Customer,
    CustomerLabelWeight,
    CustomerMessageHabituation,
    CustomerState,
    Event,
    PrimingIndicator,
)

MEMORY_AT = datetime.fromisoformat("2026-03-10T12:00:00+00:00")


def label(workspace, slug: str, *, set_slug: str = "value_proposition", phrase: str = ""):
    label_set = LabelSet.objects.for_workspace(workspace).get(slug=set_slug)
    found, _ = Label.objects.for_workspace(workspace).get_or_create(
        workspace=workspace,
        label_set=label_set,
        slug=slug,
        defaults={"name": slug.replace("-", " ").capitalize(), "prompt_phrase": phrase},
    )
    return found


def message(workspace, key: str, text: str, labels: dict | None = None) -> Message:
    subject, _, body = text.partition("\n")
    (created,) = messages_upsert(
        workspace=workspace,
        specs=[MessageSpec(key=key, subject=subject, body=body, labels=labels or {})],
    )
    return created


def customer(workspace, external_id: str, traits: dict | None = None) -> Customer:
    return Customer.objects.create(
        workspace=workspace, external_id=external_id, traits=traits or {}
    )


def remember(
    customer: Customer,
    *,
    at: datetime = MEMORY_AT,
    weights: dict | None = None,
    worn: list | None = None,
    primed_score: float = 0.0,
    signals: list | None = None,
) -> None:
    """Give a customer derived memory: weights {label: (weight, alpha, beta, exposures)},
    worn [(message, load, sends, hours_since_last_send)]."""
    workspace = customer.workspace
    CustomerState.objects.for_workspace(workspace).update_or_create(
        workspace=workspace,
        customer=customer,
        defaults={
            "primed_score": primed_score,
            "baseline_rate": 0.1,
            "last_recompute_at": at,
            "signals": signals or [],
        },
    )
    for found, (weight, alpha, beta, exposures) in (weights or {}).items():
        CustomerLabelWeight.objects.create(
            workspace=workspace,
            customer=customer,
            label=found,
            alpha=alpha,
            beta=beta,
            exposures=exposures,
            conversions=alpha - 1,
            weight=weight,
            weight_low=max(weight - 0.1, 0),
            weight_high=min(weight + 0.1, 1),
            evidence=alpha + beta,
            lift=1.5,
            computed_at=at,
        )
    for worn_message, load, sends, hours in worn or []:
        CustomerMessageHabituation.objects.create(
            workspace=workspace,
            customer=customer,
            message=worn_message,
            load=load,
            sends=sends,
            last_sent_at=at - timedelta(hours=hours),
            computed_at=at,
        )


def event(customer, name: str, hours_before: float, *, message=None, properties=None, at=MEMORY_AT):
    occurred = at - timedelta(hours=hours_before)
    return Event.objects.create(
        workspace=customer.workspace,
        customer=customer,
        name=name,
        occurred_at=occurred,
        properties=properties or {},
        message=message,
        message_key=message.key if message else "",
        dedup_key=f"{customer.pk}-{name}-{occurred.isoformat()}-{Event.unscoped.count()}",
    )


def primer(workspace, event_name: str, lift: float = 2.5, odds_low: float = 1.4):
    return PrimingIndicator.objects.create(
        workspace=workspace,
        event_name=event_name,
        lift=lift,
        odds_ratio=lift * 1.2,
        odds_ratio_low=odds_low,
        odds_ratio_high=lift * 2,
        support=100,
        median_lead_h=5.0,
        computed_at=MEMORY_AT,
    )


@pytest.fixture
def rich_customer(workspace):
    """A customer with weights in two sets, a worn-out message, and a recent priming action."""
    convenience = label(workspace, "convenience", phrase="convenience")
    discount = label(workspace, "discount", phrase="discounts")
    bogo = label(workspace, "bogo", phrase="buy-one-get-one offers")
    playful = label(workspace, "playful", set_slug="tone", phrase="a playful tone")
    worn = message(
        workspace,
        "spring-sale",
        "Spring sale!\n20% off everything this weekend",
        {"value_proposition": ["discount"]},
    )
    person = customer(workspace, "cust-1", {"name": "Ann", "plan": "gold", "age": 41})
    remember(
        person,
        weights={
            convenience: (0.61, 30.0, 20.0, 25.0),
            discount: (0.25, 8.0, 12.0, 3.0),
            bogo: (0.14, 2.0, 3.0, 0.5),
            playful: (0.7, 15.0, 10.0, 12.0),
        },
        worn=[(worn, 2.4, 5, 30)],
        primed_score=0.8,
    )
    for hours in (30, 60, 100, 200):
        event(person, "Message Sent", hours, message=worn)
    primer(workspace, "Product Viewed", lift=2.5)
    event(person, "Product Viewed", 2, properties={"product": "Laptop 14"})
    return person


class Recorder:
    """A small HTTP server on 127.0.0.1 in a thread, recording every request it receives."""

    def __init__(self, respond):
        self.requests: list[dict] = []
        self.respond = respond
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                headers = {key.lower(): value for key, value in self.headers.items()}
                request = {"path": self.path, "headers": headers, "raw": raw}
                recorder.requests.append(request)
                status, body, content_type = recorder.respond(request)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeLlm:
    """An OpenAI-compatible chat server: answers, times out, fails or talks nonsense on demand.

    `schemas` is "honour" (a JSON schema in response_format is accepted, as OpenAI, vLLM, Ollama
    and llama.cpp do) or "refuse" (HTTP 400 for it, as a server without the feature answers);
    `answers` are contents given first, one per request, before the usual ones.
    """

    def __init__(self):
        self.mode = "ok"
        self.schemas = "honour"
        self.answers: list[str] = []
        self.drafts: list[dict] = []
        # What a structured-output request (response_format) answers: {"labels": labels}.
        self.labels: list[str] = []
        self.sleep_s = 3.0
        self.recorder = Recorder(self._respond)
        self.base_url = self.recorder.url + "/v1"

    @property
    def requests(self) -> list[dict]:
        return [json.loads(r["raw"]) for r in self.recorder.requests]

    def system_prompts(self) -> list[str]:
        return [
            m["content"]
            for body in self.requests
            for m in body["messages"]
            if m["role"] == "system"
        ]

    def _respond(self, request):
        if self.mode == "timeout":
            time.sleep(self.sleep_s)
        if self.mode == "500":
            return 500, b'{"error": {"message": "boom"}}', "application/json"
        if self.mode == "malformed":
            return 200, b"{this is not json", "application/json"
        body = json.loads(request["raw"])
        wanted = (body.get("response_format") or {}).get("type")
        if wanted == "json_schema" and self.schemas == "refuse":
            return (
                400,
                b'{"error": {"message": "response_format not supported"}}',
                "application/json",
            )
        system = [m["content"] for m in body["messages"] if m["role"] == "system"]
        if self.answers:
            content = self.answers.pop(0)
        elif system and "taxonomy" in system[0]:
            content = json.dumps({"labels": self.labels})
        elif self.drafts and system and "JSON" in system[0]:
            content = json.dumps({"messages": self.drafts})
        elif system:
            content = "PERSONAL ANSWER for a known customer"
        else:
            content = "GENERIC ANSWER for anyone"
        answer = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "test"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return 200, json.dumps(answer).encode(), "application/json"

    def close(self):
        self.recorder.close()


@pytest.fixture
def fake_llm(settings):
    llm = FakeLlm()
    settings.PRIMER_LLM_BASE_URL = llm.base_url
    settings.PRIMER_LLM_API_KEY = "test-key"
    settings.PRIMER_LLM_MODEL = "test-model"
    settings.PRIMER_LLM_TIMEOUT_S = 1.0
    yield llm
    llm.close()


@pytest.fixture
def receiver():
    """A webhook receiver: answers with the codes in `.codes` in turn, then 200."""
    codes: list[int] = []

    def respond(request):
        status = codes.pop(0) if codes else 200
        return status, b"ok", "text/plain"

    server = Recorder(respond)
    server.codes = codes
    yield server
    server.close()
