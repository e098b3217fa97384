"""Reads: which template renders, customers' prompts one at a time or streamed in chunks."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from django.db import connection, connections
from django.db.models import QuerySet

from campaigns.models import (
    Campaign,
    PromptSettings,
    PromptTemplate,
    PromptTemplateVersion,
    Workspace,
)
from campaigns.prompts.context import CUSTOMER_COLUMNS, ChunkMemory, CustomerRow, MemoryReader
from campaigns.prompts.defaults import DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_SLUG
from campaigns.prompts.engine import RenderedPrompt, compile_template, content_hash, render_text
from campaigns.prompts.quoting import one_line, quote
from campaigns.prompts.wording import PHRASE_LIMIT, span
from memory.decisions import customers_decisions_serve
from memory.models import Customer
from memory.scoring.exploration import NO_MEMORY, RANDOM, assign_arm

CHUNK_SIZE = 1000


class PromptChoiceError(LookupError):
    """The template, version or campaign asked for does not exist in the workspace."""


@dataclass(frozen=True)
class PromptChoice:
    """The template version and guidance a set of prompts is rendered with."""

    template_slug: str
    template_version: int
    text: str
    guidance: str
    campaign_slug: str = ""
    campaign: CampaignTerms | None = None
    # Where decisions are served from ("prompt", "export"): each customer's campaign message is
    # chosen, logged as a Decision and stated in the prompt. "": render only (pages, previews).
    serve: str = ""

    def campaign_context(self) -> dict:
        """Return the campaign's terms for the template context ({} without a campaign)."""
        return self.campaign.context() if self.campaign else {}

    def arms(self, workspace_id: int, customer_ids: list[int]) -> dict[int, str]:
        """Return each customer's holdout arm in the campaign ({} without a campaign)."""
        if self.campaign is None:
            return {}
        shares = {RANDOM: self.campaign.holdout_random, NO_MEMORY: self.campaign.holdout_no_memory}
        return {pk: assign_arm(workspace_id, self.campaign.pk, pk, shares) for pk in customer_ids}


@dataclass(frozen=True)
class CampaignTerms:
    """What a prompt says about its campaign: its goal and the window its sends are credited in."""

    slug: str
    name: str
    goal_event: str
    attribution_window_h: float
    pk: int = 0
    holdout_random: float = 0.0
    holdout_no_memory: float = 0.0

    def context(self) -> dict:
        return {
            "slug": self.slug,
            "name": one_line(self.name, PHRASE_LIMIT),
            "goal_event": quote(self.goal_event),
            "attribution_window_h": self.attribution_window_h,
            "window": span(self.attribution_window_h),
        }


def prompt_settings_of(*, workspace: Workspace) -> PromptSettings | None:
    """Return the workspace's prompt defaults, if any were saved."""
    return (
        PromptSettings.objects.for_workspace(workspace)
        .select_related("template")
        .filter(workspace=workspace)
        .first()
    )


def prompt_choice(
    *,
    workspace: Workspace,
    template: str | None = None,
    campaign: str | None = None,
    version: int | None = None,
) -> PromptChoice:
    """Resolve a template slug, a campaign slug and a version to what renders the prompts.

    A campaign brings its template and guidance; otherwise the workspace's defaults apply, and
    without any saved template Primer's built-in one (version 0).
    """
    settings = prompt_settings_of(workspace=workspace)
    guidance = settings.guidance if settings else ""
    chosen: PromptTemplate | None = None
    campaign_slug = ""
    terms = None
    if campaign:
        found = Campaign.objects.for_workspace(workspace).filter(slug=campaign).first()
        if found is None:
            raise PromptChoiceError(f"No campaign {campaign!r} in this workspace.")
        campaign_slug = found.slug
        terms = CampaignTerms(
            found.slug,
            found.name,
            found.effective_goal_event,
            found.effective_attribution_window_h,
            found.pk,
            found.holdout_random,
            found.holdout_no_memory,
        )
        guidance = found.guidance or guidance
        if found.prompt_template_id and not template:
            chosen = PromptTemplate.objects.for_workspace(workspace).get(
                pk=found.prompt_template_id
            )
    if template:
        chosen = PromptTemplate.objects.for_workspace(workspace).filter(slug=template).first()
        if chosen is None and template != DEFAULT_TEMPLATE_SLUG:
            raise PromptChoiceError(f"No prompt template {template!r} in this workspace.")
    elif chosen is None and settings is not None and settings.template_id:
        chosen = settings.template
    elif chosen is None:
        chosen = (
            PromptTemplate.objects.for_workspace(workspace)
            .filter(slug=DEFAULT_TEMPLATE_SLUG)
            .first()
        )

    if chosen is None:
        if version not in (None, 0):
            raise PromptChoiceError("The built-in template has only version 0.")
        return PromptChoice(
            DEFAULT_TEMPLATE_SLUG, 0, DEFAULT_TEMPLATE, guidance, campaign_slug, terms
        )
    versions = PromptTemplateVersion.objects.filter(template=chosen)
    found_version = (
        versions.filter(number=version).first()
        if version is not None
        else versions.order_by("-number").first()
    )
    if found_version is None:
        if version is None and chosen.slug == DEFAULT_TEMPLATE_SLUG:
            return PromptChoice(
                DEFAULT_TEMPLATE_SLUG, 0, DEFAULT_TEMPLATE, guidance, campaign_slug, terms
            )
        raise PromptChoiceError(f"Template {chosen.slug!r} has no version {version}.")
    return PromptChoice(
        chosen.slug, found_version.number, found_version.text, guidance, campaign_slug, terms
    )


def _served(reader: MemoryReader, choice: PromptChoice, rows: list[CustomerRow]) -> dict:
    """Serve and log each customer's campaign message (choice.serve set), keyed by customer."""
    if not choice.serve or choice.campaign is None:
        return {}
    campaign = Campaign.objects.for_workspace(reader.workspace).get(pk=choice.campaign.pk)
    return customers_decisions_serve(
        workspace=reader.workspace,
        campaign=campaign,
        customer_ids=[row.pk for row in rows],
        source=choice.serve,
    )


def _render_chunk(
    reader: MemoryReader,
    choice: PromptChoice,
    rows: list[CustomerRow],
    memory: ChunkMemory | None = None,
) -> list[tuple[RenderedPrompt, dict]]:
    template = compile_template(choice.text)
    memory = memory or reader.read(rows)
    arms = choice.arms(reader.workspace.pk, [row.pk for row in rows])
    served = _served(reader, choice, rows)
    contexts = reader.build(
        rows,
        memory,
        without_memory={pk for pk, arm in arms.items() if arm == NO_MEMORY},
        arms=arms,
        decisions={pk: reader.decision_item(item) for pk, item in served.items()},
    )
    rendered = []
    for row, context in zip(rows, contexts, strict=True):
        text = render_text(template, context)
        memory_at = memory.memory_times.get(row.pk) if arms.get(row.pk) != NO_MEMORY else None
        decision = served.get(row.pk)
        rendered.append(
            (
                RenderedPrompt(
                    customer_pk=row.pk,
                    customer_id=row.external_id,
                    template=choice.template_slug,
                    template_version=choice.template_version,
                    memory_at=memory_at,
                    content_hash=content_hash(text),
                    text=text,
                    arm=arms.get(row.pk, ""),
                    decision_id=decision.public_id if decision else "",
                ),
                context,
            )
        )
    return rendered


# Given a chunk's prompts rendered without serving, return the customers to serve a decision to.
ServeWhere = Callable[[list[RenderedPrompt]], set[int]]


def _render_served_where(
    reader: MemoryReader,
    choice: PromptChoice,
    rows: list[CustomerRow],
    memory: ChunkMemory,
    serve_where: ServeWhere,
) -> list[RenderedPrompt]:
    """Render the chunk without serving, then serve and render again only the customers
    ``serve_where`` picks; every prompt keeps the unserved render's hash as its memory_hash.

    A webhook serves only the prompts it will deliver: a decision drawn for a prompt that is
    never sent would only be noise in the log, and a fresh draw must not make an unchanged
    memory look like a changed prompt.
    """
    plain = [prompt for prompt, _ in _render_chunk(reader, replace(choice, serve=""), rows, memory)]
    wanted = serve_where(plain)
    served = {}
    if wanted and choice.serve and choice.campaign is not None:
        picked = [row for row in rows if row.pk in wanted]
        served = {p.customer_pk: p for p, _ in _render_chunk(reader, choice, picked, memory)}
    return [
        replace(served.get(prompt.customer_pk, prompt), memory_hash=prompt.content_hash)
        for prompt in plain
    ]


def prompt_for_customer(
    *, workspace: Workspace, external_id: str, choice: PromptChoice
) -> tuple[RenderedPrompt, dict] | None:
    """Return one customer's prompt and its context, or None when there is no such customer."""
    row = (
        Customer.objects.for_workspace(workspace)
        .filter(external_id=external_id)
        .values_list(*CUSTOMER_COLUMNS)
        .first()
    )
    if row is None:
        return None
    compile_template(choice.text)  # a broken template fails before any memory is read
    reader = MemoryReader(workspace, guidance=choice.guidance, campaign=choice.campaign_context())
    return _render_chunk(reader, choice, [CustomerRow(*row)])[0]


def render_for_customer(
    *, workspace: Workspace, external_id: str, text: str, guidance: str
) -> tuple[RenderedPrompt, dict] | None:
    """Render unsaved template text for one customer (the editor's live render)."""
    choice = PromptChoice("draft", 0, text, guidance)
    return prompt_for_customer(workspace=workspace, external_id=external_id, choice=choice)


def _read_next(
    reader: MemoryReader, after_pk: int, chunk_size: int
) -> tuple[list[CustomerRow], ChunkMemory]:
    rows = [
        CustomerRow(*row)
        for row in Customer.objects.for_workspace(reader.workspace)
        .filter(pk__gt=after_pk)
        .order_by("pk")
        .values_list(*CUSTOMER_COLUMNS)[:chunk_size]
    ]
    return rows, reader.read(rows)


def prompt_chunks(
    *,
    workspace: Workspace,
    choice: PromptChoice,
    chunk_size: int = CHUNK_SIZE,
    after_pk: int = 0,
    serve_where: ServeWhere | None = None,
) -> Iterator[list[RenderedPrompt]]:
    """Yield every customer's prompt, a chunk at a time, in customer order (keyset on id).

    On PostgreSQL, outside a transaction, the next chunk is read by a helper thread (with its own
    connection) while this one renders the current chunk, so the database's time and Python's
    overlap; two chunks at most are held. With ``serve_where``, decisions are served (as
    ``choice.serve``) only to the customers it picks from each chunk's unserved prompts.
    """
    compile_template(choice.text)
    reader = MemoryReader(workspace, guidance=choice.guidance, campaign=choice.campaign_context())

    def render(rows: list[CustomerRow], memory: ChunkMemory) -> list[RenderedPrompt]:
        if serve_where is not None:
            return _render_served_where(reader, choice, rows, memory, serve_where)
        return [prompt for prompt, _ in _render_chunk(reader, choice, rows, memory)]

    if connection.vendor != "postgresql" or connection.in_atomic_block:
        while True:
            rows, memory = _read_next(reader, after_pk, chunk_size)
            if not rows:
                return
            yield render(rows, memory)
            after_pk = rows[-1].pk
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="primer-prompts") as helper:
        try:
            pending = helper.submit(_read_next, reader, after_pk, chunk_size)
            while True:
                rows, memory = pending.result()
                if not rows:
                    return
                pending = helper.submit(_read_next, reader, rows[-1].pk, chunk_size)
                yield render(rows, memory)
        finally:
            # The helper's connection would otherwise outlive the export.
            helper.submit(connections.close_all).result()


def chunk_bounds(
    *, workspace: Workspace, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[int, int]]:
    """Yield (first, last) customer ids of consecutive chunks, reading only the id index."""
    ids = Customer.objects.for_workspace(workspace).order_by("pk").values_list("pk", flat=True)
    after = 0
    while True:
        page = list(ids.filter(pk__gt=after)[:chunk_size])
        if not page:
            return
        yield page[0], page[-1]
        after = page[-1]


def prompts_in_range(
    *, reader: MemoryReader, choice: PromptChoice, bounds: tuple[int, int]
) -> list[RenderedPrompt]:
    """Render the prompts of the workspace's customers with ids within the bounds."""
    rows = [
        CustomerRow(*row)
        for row in Customer.objects.for_workspace(reader.workspace)
        .filter(pk__gte=bounds[0], pk__lte=bounds[1])
        .order_by("pk")
        .values_list(*CUSTOMER_COLUMNS)
    ]
    return [prompt for prompt, _ in _render_chunk(reader, choice, rows)]


def customers_count(*, workspace: Workspace) -> int:
    """Return how many customers the workspace has."""
    return Customer.objects.for_workspace(workspace).count()


def templates_of_workspace(*, workspace: Workspace) -> QuerySet[PromptTemplate]:
    """Return the workspace's templates, each with its versions."""
    return PromptTemplate.objects.for_workspace(workspace).prefetch_related("versions")


def template_versions(*, template: PromptTemplate) -> QuerySet[PromptTemplateVersion]:
    """Return a template's versions, newest first, with who saved them."""
    return (
        PromptTemplateVersion.objects.filter(template=template)
        .select_related("created_by")
        .order_by("-number")
    )


def template_diff(*, old: PromptTemplateVersion, new: PromptTemplateVersion) -> list[tuple]:
    """Return the line diff of two versions as (kind, text) pairs: '+', '-', ' ' or '@'."""
    lines = difflib.unified_diff(
        old.text.splitlines(),
        new.text.splitlines(),
        fromfile=f"v{old.number}",
        tofile=f"v{new.number}",
        lineterm="",
        n=3,
    )
    diff = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = line[:1] if line[:1] in {"+", "-", "@"} else " "
        diff.append((kind, line[1:] if kind != "@" else line))
    return diff
