"""Campaign pages: the list, one campaign (messages, numbers, audience and next best), the form,
and the audience's live count. Thin: a form validates, one service or selector runs."""

import json
from datetime import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from kombu.exceptions import OperationalError

from campaigns.catalogue.campaign_forms import CampaignForm
from campaigns.catalogue.campaign_selectors import (
    StoredNumbers,
    campaign_customers,
    campaign_messages,
    campaign_next_best,
    campaign_numbers_stored,
    campaign_of_workspace,
    campaigns_of_workspace,
)
from campaigns.catalogue.campaign_services import (
    campaign_archive,
    campaign_create,
    campaign_tally_request,
    campaign_update,
)
from campaigns.tasks import campaign_tally_count_task
from campaigns.tenancy.changes import Actor, StaleEdit
from campaigns.tenancy.decorators import editor_required, workspace_required
from campaigns.web.support import active_toggle, form_refused
from memory.audiences import customers_matching_count, trait_filter_parse
from memory.charts import ARM_NAMES, uplift_figure
from memory.decision_selectors import campaign_uplift, uplift_counted_at, uplift_summary


def _campaign_or_404(workspace, slug: str):
    found = campaign_of_workspace(workspace=workspace, slug=slug)
    if found is None:
        raise Http404("No such campaign.")
    return found


@workspace_required
@require_GET
def campaign_list(request):
    return render(
        request,
        "campaigns/campaigns/list.html",
        {"campaigns": campaigns_of_workspace(workspace=request.workspace)},
    )


@editor_required
@require_http_methods(["GET", "POST"])
def campaign_new(request):
    workspace = request.workspace
    form = CampaignForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = campaign_create(
                workspace=workspace, actor=Actor.of_user(request.user), **form.changes()
            )
        except ValidationError as refused:
            form_refused(form, refused)
        else:
            messages.success(request, f"Created campaign {campaign.name}.")
            return redirect("campaign", slug=campaign.slug)
    return render(request, "campaigns/campaigns/form.html", {"form": form, "campaign": None})


@editor_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request, slug: str):
    workspace = request.workspace
    campaign = _campaign_or_404(workspace, slug)
    if request.method == "POST":
        form = CampaignForm(request.POST, workspace=workspace, campaign=campaign)
        if form.is_valid():
            try:
                campaign_update(
                    workspace=workspace,
                    actor=Actor.of_user(request.user),
                    campaign=campaign,
                    expected_version=form.cleaned_data["version"],
                    changes=form.changes(),
                )
            except (ValidationError, StaleEdit) as refused:
                form_refused(form, refused)
            else:
                messages.success(request, f"Saved campaign {campaign.name}.")
                return redirect("campaign", slug=slug)
    else:
        initial = {
            name: getattr(campaign, name)
            for name in CampaignForm.base_fields
            if name not in ("messages", "slug")
        }
        initial["messages"] = list(campaign.messages.values_list("pk", flat=True))
        form = CampaignForm(initial=initial, workspace=workspace, campaign=campaign)
    return render(request, "campaigns/campaigns/form.html", {"form": form, "campaign": campaign})


@editor_required
@require_POST
def campaign_archive_view(request, slug: str):
    campaign = _campaign_or_404(request.workspace, slug)
    active_toggle(request, archive=campaign_archive, noun=campaign.name, campaign=campaign)
    return redirect("campaign", slug=slug)


def _tally(campaign) -> StoredNumbers:
    """Return the campaign's stored count, queueing a fresh one when it is not its own."""
    stored = campaign_numbers_stored(campaign=campaign)
    if stored.current or not campaign_tally_request(campaign=campaign):
        return stored
    try:
        campaign_tally_count_task.delay(campaign.pk)
    except OperationalError:  # no broker: the count waits for the next recompute's
        return stored
    # In-process tasks (the demo) have counted already; with workers the page says "counting".
    return campaign_numbers_stored(campaign=campaign)


@workspace_required
@require_GET
def campaign_detail(request, slug: str):
    workspace = request.workspace
    campaign = _campaign_or_404(workspace, slug)
    customers, next_after = campaign_customers(
        campaign=campaign, after=request.GET.get("after", "")
    )
    next_best, next_best_problem = campaign_next_best(campaign=campaign, customers=customers)
    return render(
        request,
        "campaigns/campaigns/detail.html",
        {
            "campaign": campaign,
            "campaign_messages": campaign_messages(campaign=campaign),
            "tally": _tally(campaign),
            "audience_count": customers_matching_count(
                workspace=workspace, trait_filter=trait_filter_parse(campaign.audience)
            ),
            "customers": [(c, next_best.get(c.external_id)) for c in customers],
            "next_after": next_after,
            "next_best_problem": next_best_problem,
        },
    )


def _counting_since(request) -> datetime | None:
    """The time a queued count was asked for (the `counting` parameter), or None if absent or
    not an aware time."""
    try:
        since = parse_datetime(request.GET.get("counting", ""))
    except ValueError:  # well formed but impossible, e.g. month 13
        return None
    return since if since is not None and since.tzinfo is not None else None


def _counted_since(counted_at: datetime | None, since: datetime | None) -> bool:
    """Whether a count exists that is no older than `since` (any count, without one)."""
    return counted_at is not None and (since is None or counted_at >= since)


@workspace_required
@require_GET
def campaign_uplift_view(request, slug: str):
    """The campaign's uplift per holdout arm, from its resolved decisions (no event scan)."""
    campaign = _campaign_or_404(request.workspace, slug)
    summary = uplift_summary(campaign_uplift(campaign=campaign))
    counting = _counting_since(request)
    if _counted_since(summary["counted_at"], counting):
        counting = None  # counted since: nothing to follow
    for row in summary["arms"]:
        row["name"] = ARM_NAMES[row["arm"]]
    for row in summary["comparisons"]:
        row["name"] = ARM_NAMES[row["primer_against"]]
    return render(
        request,
        "campaigns/campaigns/uplift.html",
        {
            "campaign": campaign,
            "summary": summary,
            "figure": uplift_figure(summary["arms"]),
            "has_revenue": any(row["revenue_per_send"] for row in summary["arms"]),
            "counting": counting,
            "counting_query": urlencode({"counting": counting.isoformat()}) if counting else "",
        },
    )


@workspace_required
@require_GET
def campaign_uplift_counted(request, slug: str):
    """When the campaign's decisions were last counted, and whether that is after `counting`:
    what the uplift page follows while a count is queued."""
    counted_at = uplift_counted_at(campaign=_campaign_or_404(request.workspace, slug))
    since = _counting_since(request)
    return JsonResponse(
        {
            "counted_at": counted_at.isoformat() if counted_at else None,
            "done": _counted_since(counted_at, since),
        }
    )


@workspace_required
@require_POST
def audience_count(request):
    """Count the customers an audience (JSON in the `audience` field) selects: the live count."""
    raw = request.POST.get("audience", "").strip()
    try:
        data = json.loads(raw) if raw else {}
        trait_filter = trait_filter_parse(data, workspace=request.workspace)
    except json.JSONDecodeError as error:
        return JsonResponse({"error": f"Not JSON: {error.msg} (line {error.lineno})."}, status=400)
    except ValidationError as invalid:
        return JsonResponse({"error": " ".join(invalid.messages)}, status=400)
    count = customers_matching_count(workspace=request.workspace, trait_filter=trait_filter)
    return JsonResponse({"count": count, "text": f"matches {count:,} customers"})
