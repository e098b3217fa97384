"""Compile marketers' templates in a sandboxed Django engine and render prompts with a hash.

The engine has no template loaders and no libraries, so `{% include %}`, `{% extends %}` and
`{% load %}` find nothing; `{% debug %}` (which would dump the context and modules) is refused.
Autoescaping is off because a prompt is plain text: customer data is already quoted by the
context builder. Rendering collapses runs of blank lines, so `{% if %}` lines leave no gaps.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import Lexer, TokenType

from campaigns.prompts.wording import iso

FORBIDDEN_TAGS = {"debug", "include", "extends", "load", "ssi", "csrf_token"}
MAX_TEMPLATE_CHARS = 20_000

_ENGINE = Engine(
    dirs=[],
    app_dirs=False,
    loaders=[("django.template.loaders.locmem.Loader", {})],
    libraries={},
    autoescape=False,
    debug=False,
)
_TRAILING_SPACE_RE = re.compile(r"[ \t]+\n")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


class TemplateProblem(ValueError):
    """A template that does not compile or render, with a message for the marketer."""


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
        return _ENGINE.from_string(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"Template syntax error: {exc}") from None


def render_text(template: Template, context: dict) -> str:
    """Render a context to tidy text: no trailing spaces, at most one blank line in a row."""
    try:
        text = template.render(Context(context, autoescape=False))
    except Exception as exc:  # a filter given odd data; say so rather than fail a whole export
        raise TemplateProblem(f"The template failed to render: {exc}") from None
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

    FIELDS = ("customer_id", "template", "template_version", "memory_at", "content_hash", "prompt")

    def as_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "template": self.template,
            "template_version": self.template_version,
            "memory_at": iso(self.memory_at) or None,
            "content_hash": self.content_hash,
            "prompt": self.text,
        }
