"""Reads for campaigns: the list, one campaign with its messages, its audience and its numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
)
from django.utils import timezone

from campaigns.models import Campaign, CampaignTally, Label, Message, Workspace
from memory.audiences import trait_filter_parse, trait_filter_q
from memory.models import Customer, CustomerNextBest, Event
from memory.next_best import Offer, next_best_of_customers

CUSTOMERS_PAGE = 20


def campaigns_of_workspace(*, workspace: Workspace, active: bool | None = None) -> QuerySet:
    """Return the workspace's campaigns with how many messages each may send."""
    campaigns = (
        Campaign.objects.for_workspace(workspace)
        .select_related("prompt_template")
        .annotate(message_count=Count("messages", distinct=True))
        .order_by("slug")
    )
    return campaigns if active is None else campaigns.filter(active=active)


def campaign_of_workspace(*, workspace: Workspace, slug: str) -> Campaign | None:
    """Return the workspace's campaign by slug, or None."""
    return (
        Campaign.objects.for_workspace(workspace)
        .select_related("prompt_template", "workspace")
        .filter(slug=slug)
        .first()
    )


def campaign_messages(*, campaign: Campaign) -> QuerySet[Message]:
    """Return the messages a campaign may send, with their labels."""
    labels = Label.objects.for_workspace(campaign.workspace_id).select_related("label_set")
    return (
        Message.objects.for_workspace(campaign.workspace_id)
        .filter(campaigns=campaign)
        .prefetch_related(Prefetch("labels", queryset=labels))
        .order_by("key")
    )


def campaign_customers(*, campaign: Campaign, after: str = "", size: int = CUSTOMERS_PAGE):
    """Return a page of the customers in the campaign's audience (by external id) and the next key.

    The stored audience was validated when saved; a trait that has since vanished just matches
    no one.
    """
    audience = trait_filter_parse(campaign.audience)
    customers = (
        Customer.objects.for_workspace(campaign.workspace_id)
        .filter(trait_filter_q(audience))
        .order_by("external_id")
        .only("external_id", "traits", "last_seen_at")
    )
    if after:
        customers = customers.filter(external_id__gt=after)
    rows = list(customers[: size + 1])
    next_after = rows[size - 1].external_id if len(rows) > size else ""
    return rows[:size], next_after


@dataclass(frozen=True)
class CampaignNumbers:
    """A campaign's sends and the goals credited to them within its attribution window."""

    window_h: float
    sends: int
    credited: int

    @property
    def rate(self) -> float | None:
        return self.credited / self.sends if self.sends else None


def campaign_numbers(*, campaign: Campaign) -> CampaignNumbers:
    """Count its messages' sends (within its dates) and those followed by the goal in its window.

    A send is credited when the same customer reaches the workspace's goal within the
    campaign's attribution window after it (blank window: the workspace's).
    """
    workspace = campaign.workspace
    window = timedelta(hours=campaign.effective_attribution_window_h)
    message_ids = list(
        Message.objects.for_workspace(workspace)
        .filter(campaigns=campaign)
        .values_list("pk", flat=True)
    )
    # Scoped by the workspace's own message and customer ids rather than by workspace_id: the
    # planner then probes the message and customer-timeline indexes instead of intersecting
    # them with every event of the workspace.
    sends = Event.objects.all_workspaces().filter(
        message_id__in=message_ids, name=workspace.send_event
    )
    if campaign.starts_at is not None:
        sends = sends.filter(occurred_at__gte=campaign.starts_at)
    if campaign.ends_at is not None:
        sends = sends.filter(occurred_at__lt=campaign.ends_at)
    goal_after = Event.objects.all_workspaces().filter(
        customer_id=OuterRef("customer_id"),
        name=campaign.effective_goal_event,
        occurred_at__gt=OuterRef("occurred_at"),
        occurred_at__lte=ExpressionWrapper(
            OuterRef("occurred_at") + window, output_field=DateTimeField()
        ),
    )
    counted = sends.aggregate(sends=Count("pk"), credited=Count("pk", filter=Q(Exists(goal_after))))
    return CampaignNumbers(
        window_h=campaign.effective_attribution_window_h,
        sends=counted["sends"],
        credited=counted["credited"],
    )


@dataclass(frozen=True)
class StoredNumbers:
    """A campaign's numbers as last counted by the task, and whether they are still its own."""

    numbers: CampaignNumbers | None  # None: never counted
    counted_at: datetime | None
    current: bool  # counted for the campaign as it is now (its version)
    requested_at: datetime | None


def campaign_numbers_stored(*, campaign: Campaign) -> StoredNumbers:
    """Return the campaign's stored count (one indexed read; never the events)."""
    tally = CampaignTally.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)
    tally = tally.first()
    if tally is None:
        return StoredNumbers(None, None, False, None)
    numbers = None
    if tally.counted_at is not None:
        numbers = CampaignNumbers(
            window_h=tally.window_h, sends=tally.sends or 0, credited=tally.credited or 0
        )
    return StoredNumbers(
        numbers=numbers,
        counted_at=tally.counted_at,
        current=numbers is not None and tally.campaign_version == campaign.version,
        requested_at=tally.requested_at,
    )


def campaigns_to_count(*, workspace_id: int) -> list[int]:
    """Return the active campaigns whose count is missing, made for an older version of them,
    or older than PRIMER_TALLY_RETRY_S: what a recompute's aftermath recounts (a stream of
    incremental runs does not recount every campaign each time)."""
    fresh = timezone.now() - timedelta(seconds=settings.PRIMER_TALLY_RETRY_S)
    return list(
        Campaign.objects.for_workspace(workspace_id)
        .filter(active=True)
        .exclude(tally__counted_at__gte=fresh, tally__campaign_version=F("version"))
        .values_list("pk", flat=True)
    )


def campaign_next_best(
    *, campaign: Campaign, customers: list[Customer]
) -> tuple[dict[str, Offer], str]:
    """Return each customer's best message among the campaign's, from their stored lists, and
    why none when there is none."""
    keys = set(campaign.messages.values_list("key", flat=True))
    if not keys:
        return {}, "The campaign has no messages to rank."
    # Every stored row: a live campaign's messages are stored wherever they rank.
    stored = settings.PRIMER_NEXT_BEST_STORED + settings.PRIMER_NEXT_BEST_CAMPAIGN_MESSAGES
    answers = next_best_of_customers(
        workspace=campaign.workspace, customers=customers, limit=stored
    )
    best: dict[str, Offer] = {}
    for answer in answers:
        if answer.nothing_now and not answer.excluded:
            return {}, answer.nothing_now  # no memory yet: the same for everyone
        found = next((offer for offer in answer.offers if offer.key in keys), None)
        if found is not None:
            best[answer.customer] = found
    problem = ""
    if len(best) < len(customers):
        problem = "A dash: none of the campaign's messages may be sent to that customer now."
    unranked = campaign_messages_unranked(campaign=campaign)
    if unranked:
        problem = (
            f"{problem} Not ranked for everyone by the last recompute: {', '.join(unranked)} "
            "(they joined the campaign since, or the live campaigns have more than "
            f"{settings.PRIMER_NEXT_BEST_CAMPAIGN_MESSAGES} messages); recompute to rank them."
        ).strip()
    return best, problem


def campaign_messages_unranked(*, campaign: Campaign) -> list[str]:
    """Return the keys of a live campaign's active messages the last recompute did not store
    for everyone (absent from the population's list, which keeps every live campaign's
    messages); none for a campaign not live, or before any recompute stored a list."""
    if not campaign.is_live:
        return []
    population = CustomerNextBest.objects.for_workspace(campaign.workspace).filter(
        customer__isnull=True
    )
    # One query: the active messages absent from a population list that exists.
    unranked = campaign.messages.filter(
        ~Exists(population.filter(message=OuterRef("pk"))), Exists(population), active=True
    )
    return sorted(unranked.values_list("key", flat=True))
