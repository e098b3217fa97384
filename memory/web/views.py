"""Pages of what Primer learned: customers, one customer's memory, the workspace's memory.

Thin: a selector reads, charts.py shapes figures, a template renders.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from campaigns.tenancy.decorators import workspace_required
from memory import charts, insight_charts
from memory.insights import customer_timeline
from memory.models import Customer, RecomputeRun
from memory.next_best import next_best_for
from memory.recompute.service import BrokerUnavailable, RecomputeUnavailable, recompute_ask
from memory.scoring.habituation import WORN_OUT_MIN_LOAD
from memory.scoring.priming import PRIMED_MIN_SCORE
from memory.selectors import (
    customer_memory_summary,
    customer_missing,
    customers_page,
    memory_summary,
    priming_indicators,
    recent_events,
    recompute_runs,
    run_changes,
)
from memory.strategy import customer_weights, memory_with_provenance, strategy_context
from memory.tasks import decisions_match_now


@workspace_required
def customer_list(request):
    search = request.GET.get("q", "").strip()
    primed_only = request.GET.get("primed") == "1"
    worn_out_only = request.GET.get("worn") == "1"
    sort = request.GET.get("sort", "id")
    try:
        page = customers_page(
            workspace=request.workspace,
            search=search,
            after=request.GET.get("after", ""),
            primed_only=primed_only,
            worn_out_only=worn_out_only,
            sort=sort,
        )
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    return render(
        request,
        "memory/customer_list.html",
        {
            "rows": page.rows,
            "search": search,
            "primed_only": primed_only,
            "primed_min_score": PRIMED_MIN_SCORE,
            "worn_out_only": worn_out_only,
            "worn_out_min_load": WORN_OUT_MIN_LOAD,
            "sort": sort,
            # The search and filter every sort link and the next page keep.
            "filters": urlencode(
                {"q": search}
                | ({"primed": "1"} if primed_only else {})
                | ({"worn": "1"} if worn_out_only else {})
            ),
            "next_after": page.next_after,
        },
    )


@workspace_required
def customer_detail(request, external_id: str):
    workspace = request.workspace
    try:
        memory = customer_memory_summary(workspace=workspace, external_id=external_id)
    except Customer.DoesNotExist:
        missing = customer_missing(workspace=workspace, external_id=external_id)
        return render(request, "memory/customer_missing.html", {"missing": missing}, status=404)
    customer = Customer.objects.for_workspace(workspace).get(external_id=external_id)
    # The stored list, guardrails and overrides applied before anything else (decision 0260).
    context = strategy_context(workspace=workspace, customers=[external_id])
    answer = next_best_for(workspace=workspace, external_id=external_id, limit=5, context=context)
    weights = customer_weights(workspace=workspace, customer=customer, context=context)
    memory = memory_with_provenance(workspace=workspace, memory=memory, weights=weights)
    label_sets = [
        {
            "slug": label_set,
            "rows": rows,
            "figure_id": f"weights-{index}",
            "figure": charts.label_weights_figure(rows, memory["baseline_rate"]),
        }
        for index, (label_set, rows) in enumerate(memory["weights"].items())
    ]
    timeline = customer_timeline(workspace=request.workspace, external_id=external_id)
    return render(
        request,
        "memory/customer_detail.html",
        {
            "memory": memory,
            "timeline": timeline,
            "timeline_figure": insight_charts.customer_timeline_figure(timeline)
            if timeline
            else None,
            "label_sets": label_sets,
            "events": recent_events(workspace=workspace, external_id=external_id),
            "next_best": answer,
            "ranking": answer.offers,
            "ranking_problem": answer.nothing_now,
            "excluded": answer.excluded,
            "nothing_now": answer.nothing_now if answer.excluded else "",
            "guardrails": context.rules,
        },
    )


@workspace_required
def memory_overview(request):
    runs = recompute_runs(workspace=request.workspace)
    succeeded = [run for run in runs if run.status == RecomputeRun.Status.SUCCEEDED]
    latest = succeeded[0] if succeeded else None
    indicators = priming_indicators(workspace=request.workspace)
    curve = (latest.stats.get("habituation_curve") or []) if latest else []
    summary = memory_summary(workspace=request.workspace, run=latest)
    model_rows = summary["model"]["features"] if summary["model"] else []
    changes = run_changes(workspace=request.workspace, runs=runs)
    return render(
        request,
        "memory/overview.html",
        {
            **summary,
            "runs": [(run, changes.by_run.get(run.pk, [])) for run in runs],
            "pending_changes": changes.pending,
            "latest": latest,
            "indicators": indicators,
            "priming_figure": charts.priming_figure(indicators) if indicators else None,
            "curve_figure": charts.habituation_curve_figure(curve) if curve else None,
            "model_figure": charts.model_effects_figure(model_rows) if model_rows else None,
            "active": next((run for run in runs if run.status in ("queued", "running")), None),
        },
    )


@workspace_required
@require_POST
def recompute_now(request):
    if not request.membership.can_edit:
        messages.error(request, "Only editors and owners can start a recompute.")
        return redirect("memory-overview")
    try:
        run, started = recompute_ask(
            workspace=request.workspace,
            incremental=request.POST.get("mode") == "incremental",
            requested_by="page",
        )
    except RecomputeUnavailable as error:
        messages.error(request, str(error))
        return redirect("memory-overview")
    if not started:
        messages.info(
            request, f"Recompute {run.pk} is already {run.status}; it answers this request too."
        )
    elif run.status == RecomputeRun.Status.QUEUED:
        messages.success(request, f"Recompute {run.pk} started on the workers.")
    else:
        messages.success(request, f"Recompute {run.pk} finished: {run.customers} customers.")
    return redirect("memory-overview")


@workspace_required
@require_POST
def decisions_match_now_view(request):
    """Match the workspace's decisions to their sends and count its campaigns now (the uplift
    page's button); the beat does it every 5 minutes."""
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("memory-overview")
    if not request.membership.can_edit:
        messages.error(request, "Only editors and owners can start the matching.")
        return redirect(back)
    try:
        matched = decisions_match_now(workspace_id=request.workspace.pk)
    except BrokerUnavailable as error:
        messages.error(request, str(error))
        return redirect(back)
    if matched is None:
        messages.success(request, "The matching is queued on the workers.")
        # The page follows the count until it is newer than this request (uplift-counting.js).
        joiner = "&" if "?" in back else "?"
        back = f"{back}{joiner}{urlencode({'counting': timezone.now().isoformat()})}"
    else:
        sends = matched["named"] + matched["windowed"]
        messages.success(
            request,
            f"Matched and counted: {sends} sends matched to decisions, "
            f"{matched['resolved']} outcomes resolved.",
        )
    return redirect(back)


@workspace_required
def run_status(request, run_id: int):
    run = (
        RecomputeRun.objects.for_workspace(request.workspace)
        .defer("population")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise Http404("No such recompute in this workspace.")
    return JsonResponse(
        {
            "id": run.pk,
            "status": run.status,
            "shards_done": run.shards_done,
            "shards_total": run.shards_total,
            "progress": run.progress,
            "error": run.error,
        }
    )
