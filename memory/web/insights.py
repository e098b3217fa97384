"""The insight pages: Overview, Associations, Habituation, Priming (read-only, any member).

Thin: memory/insights.py reads rollups and stored aggregates, insight_charts.py shapes the
figures, a template draws each figure beside its table.
"""

from django.shortcuts import render

from campaigns.tenancy.decorators import workspace_required
from memory import charts, insight_charts, insights
from memory.models import IngestIssueCount


@workspace_required
def insights_overview(request):
    data = insights.overview(workspace=request.workspace)
    labels = dict(IngestIssueCount.Kind.choices)
    return render(
        request,
        "memory/insights/overview.html",
        {
            **data,
            "section": "overview",
            "days_figure": insight_charts.events_per_day_figure(data["days"])
            if data["days"]
            else None,
            "issues_figure": insight_charts.issues_per_day_figure(data["issue_days"], labels)
            if data["issue_days"]
            else None,
            "ingest_url": request.build_absolute_uri("/api/v1/events"),
            "segment_url": request.build_absolute_uri("/v1/batch"),
        },
    )


@workspace_required
def insights_associations(request):
    data = insights.associations(workspace=request.workspace, trait=request.GET.get("trait", ""))
    gaps = data["gaps"]
    return render(
        request,
        "memory/insights/associations.html",
        {
            **data,
            "section": "associations",
            "heatmap_figure": insight_charts.segment_lift_figure(data["heatmap"])
            if data["heatmap"]
            else None,
            "weights_figure": insight_charts.weight_histograms_figure(
                data["weights"], *data["weight_range"]
            )
            if data["weights"]
            else None,
            "gaps_figure": insight_charts.content_gap_figure(gaps)
            if gaps["labels"] and gaps["channels"]
            else None,
            "gap_rows": list(zip(gaps["labels"], gaps["counts"], strict=True)),
            "segment_rows": _segment_rows(data["heatmap"]),
            "weight_rows": [(row["label"], sum(row["counts"])) for row in data["weights"]],
        },
    )


@workspace_required
def insights_habituation(request):
    data = insights.habituation(workspace=request.workspace)
    clusters = {}
    for message in data["map"]:
        if message["near_duplicates"]:
            clusters.setdefault(message["cluster"], []).append(message)
    return render(
        request,
        "memory/insights/habituation.html",
        {
            **data,
            "section": "habituation",
            "curve_figure": charts.habituation_curve_figure(data["curve"])
            if data["curve"]
            else None,
            "map_figure": insight_charts.message_map_figure(data["map"]) if data["map"] else None,
            "clusters": sorted(clusters.values(), key=len, reverse=True),
        },
    )


@workspace_required
def insights_priming(request):
    data = insights.priming(workspace=request.workspace)
    medians = {row["event_name"]: row["median_lead_h"] for row in data["indicators"]}
    return render(
        request,
        "memory/insights/priming.html",
        {
            **data,
            "section": "priming",
            "lift_figure": charts.priming_figure(data["indicators"])
            if data["indicators"]
            else None,
            "leads_figure": insight_charts.lead_times_figure(data["leads"], data["lead_edges"])
            if data["leads"]
            else None,
            "lead_rows": [
                {
                    "event_name": row["event_name"],
                    "goals": sum(row["counts"]),
                    "median_lead_h": medians.get(row["event_name"]),
                }
                for row in data["leads"]
            ],
        },
    )


def _segment_rows(heatmap: dict | None) -> list[tuple]:
    """Return (value, customers, (best label, its mean lift)) per segment of the heatmap."""
    if not heatmap:
        return []
    rows = []
    for value, customers, lifts in zip(
        heatmap["values"], heatmap["customers"], heatmap["lift"], strict=True
    ):
        known = [(lift, label) for lift, label in zip(lifts, heatmap["labels"], strict=True)]
        known = [(lift, label) for lift, label in known if lift is not None]
        best = max(known) if known else (None, "—")
        rows.append((value, customers, (best[1], best[0])))
    return rows
