"""Writes: templates and their versions, and the workspace's prompt defaults."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from campaigns.models import (
    PromptSettings,
    PromptTemplate,
    PromptTemplateVersion,
    Workspace,
)
from campaigns.prompts.defaults import (
    DEFAULT_TEMPLATE,
    DEFAULT_TEMPLATE_NAME,
    DEFAULT_TEMPLATE_SLUG,
)
from campaigns.prompts.engine import compile_template

NOTE_LIMIT = 300


@transaction.atomic
def prompt_template_create(
    *, workspace: Workspace, slug: str, name: str = "", text: str = DEFAULT_TEMPLATE, user=None
) -> PromptTemplate:
    """Create a template with its first version (Primer's default text unless given)."""
    compile_template(text)
    template = PromptTemplate(
        workspace=workspace, slug=slug, name=name or slug.replace("-", " ").capitalize()
    )
    template.full_clean()
    template.save()
    PromptTemplateVersion.objects.create(
        template=template, number=1, text=text, note="Created", created_by=user
    )
    return template


def prompt_template_ensure_default(*, workspace: Workspace, user=None) -> PromptTemplate:
    """Return the workspace's 'default' template, saving Primer's built-in text as version 1."""
    existing = (
        PromptTemplate.objects.for_workspace(workspace).filter(slug=DEFAULT_TEMPLATE_SLUG).first()
    )
    if existing is not None:
        return existing
    return prompt_template_create(
        workspace=workspace, slug=DEFAULT_TEMPLATE_SLUG, name=DEFAULT_TEMPLATE_NAME, user=user
    )


@transaction.atomic
def prompt_template_save(
    *, template: PromptTemplate, text: str, note: str = "", user=None
) -> PromptTemplateVersion:
    """Save the text as the template's next version; an unchanged text saves nothing."""
    text = text.replace("\r\n", "\n")
    compile_template(text)
    # Lock the template row so two editors saving at once get consecutive numbers.
    PromptTemplate.objects.for_workspace(template.workspace_id).select_for_update().get(
        pk=template.pk
    )
    current = PromptTemplateVersion.objects.filter(template=template).order_by("-number").first()
    if current is not None and current.text == text:
        return current
    number = (
        PromptTemplateVersion.objects.filter(template=template).aggregate(n=Max("number"))["n"] or 0
    ) + 1
    return PromptTemplateVersion.objects.create(
        template=template, number=number, text=text, note=note[:NOTE_LIMIT], created_by=user
    )


def prompt_template_revert(
    *, template: PromptTemplate, number: int, user=None
) -> PromptTemplateVersion:
    """Save an earlier version's text as a new version, so history only grows."""
    old = PromptTemplateVersion.objects.get(template=template, number=number)
    return prompt_template_save(
        template=template, text=old.text, note=f"Revert to v{number}", user=user
    )


def prompt_settings_update(
    *, workspace: Workspace, template: PromptTemplate | None, guidance: str
) -> PromptSettings:
    """Set the workspace's default template and guidance."""
    settings, _ = PromptSettings.objects.for_workspace(workspace).update_or_create(
        workspace=workspace, defaults={"template": template, "guidance": guidance.strip()}
    )
    return settings
