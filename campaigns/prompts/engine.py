"""Compile marketers' templates in a sandboxed Django engine and render prompts with a hash.

The engine has no template loaders and no libraries, so `{% include %}`, `{% extends %}` and
`{% load %}` find nothing; `{% debug %}` (which would dump the context and modules) is refused.
Autoescaping is off because a prompt is plain text: customer data is already quoted by the
context builder. Rendering collapses runs of blank lines, so `{% if %}` lines leave no gaps.
A render is bounded — loop passes, time and output — and filters that take a width or a
precision are clamped, so no template can tie up a worker (the limits: docs/prompts.md).
"""

from __future__ import annotations

import hashlib
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.template import Context, Engine, Library, Template, TemplateSyntaxError, defaultfilters
from django.template.base import Lexer, NodeList, TokenType
from django.template.defaulttags import ForNode

from campaigns.prompts.wording import iso

FORBIDDEN_TAGS = {"debug", "include", "extends", "load", "ssi", "csrf_token"}
MAX_TEMPLATE_CHARS = 20_000
MAX_LOOP_PASSES = 5_000
MAX_RENDER_S = 0.5
MAX_OUTPUT_CHARS = 100_000
MAX_FILTER_WIDTH = 1_000

_ENGINE = Engine(
    dirs=[],
    app_dirs=False,
    loaders=[("django.template.loaders.locmem.Loader", {})],
    libraries={},
    autoescape=False,
    debug=False,
)


def _clamped(filter_function, limit: int):
    """Wrap a filter whose argument is a width or precision so the argument stays in ±limit."""

    def clamped(value, arg=None):
        if arg is None:
            return filter_function(value)
        if any(int(digits) > limit for digits in re.findall(r"\d+", str(arg))):
            raise TemplateProblem(f"A filter's width or precision is over {limit}.")
        return filter_function(value, arg)

    return clamped


def _bounded_filters() -> Library:
    """Return Django's filters with widths and precisions bounded (`ljust:"999999999"`)."""
    library = Library()
    library.filters = dict(defaultfilters.register.filters)
    for name in ("ljust", "rjust", "center", "wordwrap", "truncatechars", "truncatewords"):
        library.filters[name] = _clamped(defaultfilters.register.filters[name], MAX_FILTER_WIDTH)
    library.filters["floatformat"] = _clamped(defaultfilters.register.filters["floatformat"], 20)
    library.filters["stringformat"] = _clamped(
        defaultfilters.register.filters["stringformat"], MAX_FILTER_WIDTH
    )
    return library


_ENGINE.template_builtins = [
    _bounded_filters() if library.filters is defaultfilters.register.filters else library
    for library in _ENGINE.template_builtins
]
_TRAILING_SPACE_RE = re.compile(r"[ \t]+\n")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


class TemplateProblem(ValueError):
    """A template that does not compile or render, with a message for the marketer."""


class RenderBudget:
    """What one render may still spend: loop passes, output characters, time."""

    def __init__(self):
        self.passes_left = MAX_LOOP_PASSES
        self.output_left = MAX_OUTPUT_CHARS
        self.deadline = time.monotonic() + MAX_RENDER_S

    def pass_begins(self) -> None:
        self.passes_left -= 1
        if self.passes_left < 0:
            raise TemplateProblem(f"Its loops ran more than {MAX_LOOP_PASSES} times.")
        if time.monotonic() > self.deadline:
            raise TemplateProblem(f"It took longer than {MAX_RENDER_S} s.")

    def spend(self, text: str) -> str:
        self.output_left -= len(text)
        if self.output_left < 0:
            raise TemplateProblem(f"Its output is longer than {MAX_OUTPUT_CHARS} characters.")
        return text


_BUDGET: ContextVar[RenderBudget | None] = ContextVar("prompt_render_budget", default=None)


class _MeteredLoopBody(NodeList):
    """A loop's body that charges the render's budget once per pass and for what it writes."""

    def __iter__(self):
        budget = _BUDGET.get()
        if budget is None:  # walking the tree (e.g. get_nodes_by_type), not rendering
            yield from super().__iter__()
            return
        budget.pass_begins()
        for node in super().__iter__():
            yield _MeteredNode(node, budget)


class _MeteredNode:
    """A node rendered inside a loop, whose output counts against the budget."""

    def __init__(self, node, budget: RenderBudget):
        self.node, self.budget = node, budget

    def render_annotated(self, context) -> str:
        return self.budget.spend(str(self.node.render_annotated(context)))


def _meter_loops(template: Template) -> Template:
    for loop in template.nodelist.get_nodes_by_type(ForNode):
        loop.nodelist_loop = _MeteredLoopBody(loop.nodelist_loop)
    return template


@lru_cache(maxsize=64)
def compile_template(text: str) -> Template:
    """Return the compiled template, or raise TemplateProblem saying what is wrong."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"The template is longer than {MAX_TEMPLATE_CHARS} characters.")
    for token in Lexer(text).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split(" ", 1)[0]
            if name in FORBIDDEN_TAGS:
                raise TemplateProblem(
                    f"Line {token.lineno}: the {{% {name} %}} tag is not available in prompts."
                )
    try:
        return _meter_loops(_ENGINE.from_string(text))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"Template syntax error: {exc}") from None


def render_text(template: Template, context: dict) -> str:
    """Render a context to tidy text: no trailing spaces, at most one blank line in a row."""
    token = _BUDGET.set(RenderBudget())
    try:
        text = template.render(Context(context, autoescape=False))
    except TemplateProblem as exc:
        raise TemplateProblem(f"The template was stopped: {exc}") from None
    except Exception as exc:  # a filter given odd data; say so rather than fail a whole export
        raise TemplateProblem(f"The template failed to render: {exc}") from None
    finally:
        _BUDGET.reset(token)
    if len(text) > MAX_OUTPUT_CHARS:
        raise TemplateProblem(
            f"The template's output is longer than {MAX_OUTPUT_CHARS} characters."
        )
    if " \n" in text or "\t\n" in text:  # the regex is slow on prose, so look first
        text = _TRAILING_SPACE_RE.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_LINES_RE.sub("\n\n", text)
    return text.strip() + "\n"


def content_hash(text: str) -> str:
    """Return the SHA-256 hex digest of the prompt's UTF-8 text."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RenderedPrompt:
    """One customer's prompt with what it was made from."""

    customer_pk: int
    customer_id: str
    template: str
    template_version: int
    memory_at: datetime | None
    content_hash: str
    text: str
    arm: str = ""  # the customer's holdout arm in the campaign ("" without a campaign)
    decision_id: str = ""  # the decision the prompt states, when one was served
    # The hash of the prompt rendered without a served decision: what a webhook compares to
    # tell a changed memory from a new draw ("" when no decision was served: content_hash).
    memory_hash: str = ""

    @property
    def change_hash(self) -> str:
        """Return the hash that says whether the customer's prompt changed since delivered."""
        return self.memory_hash or self.content_hash

    FIELDS = (
        "customer_id",
        "template",
        "template_version",
        "memory_at",
        "content_hash",
        "prompt",
        "arm",
        "decision_id",
    )

    def as_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "template": self.template,
            "template_version": self.template_version,
            "memory_at": iso(self.memory_at) or None,
            "content_hash": self.content_hash,
            "prompt": self.text,
            "arm": self.arm,
            "decision_id": self.decision_id,
        }
