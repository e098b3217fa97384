"""Writes for campaigns: create, edit, archive and restore; one service for pages, API and imports.

A campaign's goal is the workspace's goal (blank or the same name): memory is computed for one
goal per workspace, so a campaign toward another goal would be ranked and prompted by numbers
about the wrong event (docs/decisions/0250-campaign-goal-is-the-workspace-goal.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.catalogue.campaign_selectors import campaign_numbers
from campaigns.models import (
    EXPLORE_SHARE_DEFAULT,
    EXPLORE_SHARE_MAX,
    HOLDOUT_MAX,
    AuditEntry,
    Campaign,
    CampaignTally,
    Message,
    PromptTemplate,
    Workspace,
)
from campaigns.tenancy.changes import Actor, audit_record, change_archive, change_update, snapshot
from memory.audiences import trait_filter_parse

AUDITED = [
    "slug",
    "name",
    "goal_event",
    "attribution_window_h",
    "prompt_template",
    "guidance",
    "audience",
    "starts_at",
    "ends_at",
    "holdout_random",
    "holdout_no_memory",
    "exploration",
    "explore_share",
    "active",
]
EDITABLE = set(AUDITED) - {"slug"} | {"messages"}


def _message_keys(messages: Iterable[Message]) -> list[str]:
    return sorted(message.key for message in messages)


def _checked(workspace: Workspace, fields: dict) -> dict:
    """Return the fields with the audience normalised; raise ValidationError naming the field."""
    errors: dict[str, list[str]] = {}
    goal = (fields.get("goal_event") or "").strip()
    if "goal_event" in fields:
        if goal and goal != workspace.goal_event:
            errors.setdefault("goal_event", []).append(
                f"Memory is computed for the workspace's goal, {workspace.goal_event!r}; a "
                "campaign's goal is that one (leave it blank) until memory is computed per goal."
            )
        fields["goal_event"] = goal
    if "audience" in fields:
        try:
            audience = trait_filter_parse(fields["audience"], workspace=workspace)
        except ValidationError as invalid:
            errors.setdefault("audience", []).extend(invalid.messages)
        else:
            fields["audience"] = audience.as_json()
    template = fields.get("prompt_template")
    if template is not None and template.workspace_id != workspace.pk:
        errors.setdefault("prompt_template", []).append("No such template in this workspace.")
    messages = fields.get("messages")
    if messages is not None:
        foreign = [m.key for m in messages if m.workspace_id != workspace.pk]
        if foreign:
            errors.setdefault("messages", []).append(f"Not messages of this workspace: {foreign}.")
    for name, most in (
        ("holdout_random", HOLDOUT_MAX),
        ("holdout_no_memory", HOLDOUT_MAX),
        ("explore_share", EXPLORE_SHARE_MAX),
    ):
        if name not in fields:
            continue
        share = fields[name]
        if isinstance(share, bool) or not isinstance(share, int | float) or share != share:
            errors.setdefault(name, []).append(f"A share is a number from 0 to {most:g}.")
        elif not 0.0 <= share <= most:
            kept = "explores" if name == "explore_share" else "keeps as a holdout"
            errors.setdefault(name, []).append(
                f"A campaign {kept} from 0 to {most:g} of its audience; got {share:g}."
            )
        else:
            fields[name] = float(share)
    if "exploration" in fields and fields["exploration"] not in Campaign.Exploration.values:
        errors.setdefault("exploration", []).append(
            f"One of {', '.join(Campaign.Exploration.values)}; got {fields['exploration']!r}."
        )
    if errors:
        raise ValidationError(errors)
    return fields


def _dates_in_order(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationError({"ends_at": "A campaign ends after it starts."})


def _slug_taken() -> ValidationError:
    return ValidationError({"slug": "A campaign with this slug already exists in this workspace."})


@transaction.atomic
def campaign_create(
    *,
    workspace: Workspace,
    actor: Actor,
    slug: str,
    name: str,
    goal_event: str = "",
    attribution_window_h: float | None = None,
    messages: Iterable[Message] = (),
    prompt_template: PromptTemplate | None = None,
    guidance: str = "",
    audience: dict | list | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    holdout_random: float = 0.0,
    holdout_no_memory: float = 0.0,
    exploration: str = Campaign.Exploration.THOMPSON,
    explore_share: float = EXPLORE_SHARE_DEFAULT,
    active: bool = True,
) -> Campaign:
    """Create a campaign with its messages, audited with them."""
    fields = _checked(
        workspace,
        {
            "holdout_random": holdout_random,
            "holdout_no_memory": holdout_no_memory,
            "exploration": exploration,
            "explore_share": explore_share,
            "goal_event": goal_event,
            "audience": audience or {},
            "prompt_template": prompt_template,
            "messages": list(messages),
        },
    )
    _dates_in_order(starts_at, ends_at)
    if Campaign.objects.for_workspace(workspace).filter(slug=slug).exists():
        raise _slug_taken()
    campaign = Campaign(
        workspace=workspace,
        slug=slug,
        name=name,
        goal_event=fields["goal_event"],
        attribution_window_h=attribution_window_h,
        prompt_template=prompt_template,
        guidance=guidance,
        audience=fields["audience"],
        starts_at=starts_at,
        ends_at=ends_at,
        holdout_random=fields["holdout_random"],
        holdout_no_memory=fields["holdout_no_memory"],
        exploration=fields["exploration"],
        explore_share=fields["explore_share"],
        active=active,
    )
    campaign.full_clean()
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError:
        raise _slug_taken() from None
    campaign.messages.set(fields["messages"])
    audit_record(
        workspace=workspace,
        actor=actor,
        action=AuditEntry.Action.CREATE,
        obj=campaign,
        after=snapshot(campaign, AUDITED) | {"messages": _message_keys(fields["messages"])},
    )
    return campaign


@transaction.atomic
def campaign_update(
    *,
    workspace: Workspace,
    actor: Actor,
    campaign: Campaign,
    expected_version: int | None,
    changes: dict,
) -> Campaign:
    """Change a campaign's fields and messages; refuse a stale edit (StaleEdit)."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in unknown})
    changes = _checked(workspace, dict(changes))
    messages = changes.pop("messages", None)
    _dates_in_order(
        changes.get("starts_at", campaign.starts_at), changes.get("ends_at", campaign.ends_at)
    )
    extra_before = extra_after = None
    if messages is not None:
        extra_before = {"messages": _message_keys(campaign.messages.all())}
        extra_after = {"messages": _message_keys(messages)}
    saved = change_update(
        workspace=workspace,
        actor=actor,
        obj=campaign,
        changes=changes,
        expected_version=expected_version,
        audited=AUDITED,
        extra_before=extra_before,
        extra_after=extra_after,
    )
    if messages is not None:
        saved.messages.set(messages)
    return saved


def campaign_archive(
    *,
    workspace: Workspace,
    actor: Actor,
    campaign: Campaign,
    active: bool,
    expected_version: int | None = None,
) -> Campaign:
    """Archive (stop offering) or restore a campaign; its webhooks and history stay."""
    return change_archive(
        workspace=workspace,
        actor=actor,
        obj=campaign,
        active=active,
        expected_version=expected_version,
    )


def campaign_tally_count(*, campaign_id: int) -> CampaignTally | None:
    """Count a campaign's sends and credited goals now and store them (None: it is gone)."""
    campaign = Campaign.objects.all_workspaces().select_related("workspace")
    campaign = campaign.filter(pk=campaign_id).first()
    if campaign is None:
        return None
    version = campaign.version  # before counting: an edit meanwhile leaves the count stale
    numbers = campaign_numbers(campaign=campaign)
    tally, _ = CampaignTally.objects.for_workspace(campaign.workspace_id).update_or_create(
        campaign=campaign,
        defaults={
            "workspace_id": campaign.workspace_id,
            "campaign_version": version,
            "window_h": numbers.window_h,
            "sends": numbers.sends,
            "credited": numbers.credited,
            "counted_at": timezone.now(),
        },
    )
    return tally


def campaign_tally_request(*, campaign: Campaign) -> bool:
    """Note that a page wants a fresh count; True when a count should be queued (none asked
    for within PRIMER_TALLY_RETRY_S, so a page reloaded while counting queues nothing)."""
    now = timezone.now()
    retry = now - timedelta(seconds=settings.PRIMER_TALLY_RETRY_S)
    tallies = CampaignTally.objects.for_workspace(campaign.workspace_id)
    tally, created = tallies.get_or_create(
        campaign=campaign, defaults={"workspace_id": campaign.workspace_id, "requested_at": now}
    )
    if created:
        return True
    asked = (
        tallies.filter(pk=tally.pk)
        .filter(Q(requested_at__isnull=True) | Q(requested_at__lt=retry))
        .update(requested_at=now)
    )
    return asked == 1
