"""Plotly figure dicts for the insight pages, built from the rows memory/insights.py returns."""

import itertools

from memory.charts import ACCENT, LAYOUT, MUTED, axis

KIND_COLOURS = {
    "sends": ACCENT,
    "opens": "#7a96f0",
    "goals": "#12b76a",
    "priming": "#f79009",
    "other": MUTED,
}
ISSUE_COLOURS = {
    "rejected": "#b42318",
    "late": "#f79009",
    "future": "#7a5af8",
    "unknown_message": MUTED,
}
LEGEND_ON_TOP = {"orientation": "h", "y": 1.12, "x": 0}
WIDE = {**LAYOUT, "margin": {"l": 60, "r": 20, "t": 30, "b": 50}, "height": 300}


def events_per_day_figure(days: list) -> dict:
    """Events per day, stacked by kind (sends, opens, goals, other)."""
    x = [str(row.day) for row in days]
    return {
        "data": [
            {
                "type": "bar",
                "name": kind,
                "x": x,
                "y": [getattr(row, kind) for row in days],
                "marker": {"color": KIND_COLOURS[kind]},
            }
            for kind in ("sends", "opens", "goals", "other")
        ],
        "layout": {
            **WIDE,
            "barmode": "stack",
            "xaxis": axis("day (UTC)", type="date"),
            "yaxis": axis("events"),
            "legend": LEGEND_ON_TOP,
        },
    }


def issues_per_day_figure(rows: list[dict], labels: dict[str, str]) -> dict:
    """Items rejected, late, future-dated or naming an unknown message, per receipt day."""
    days = sorted({str(row["day"]) for row in rows})
    data = []
    for kind, colour in ISSUE_COLOURS.items():
        counts = {str(row["day"]): row["count"] for row in rows if row["kind"] == kind}
        if counts:
            data.append(
                {
                    "type": "bar",
                    "name": labels.get(kind, kind),
                    "x": days,
                    "y": [counts.get(day, 0) for day in days],
                    "marker": {"color": colour},
                }
            )
    return {
        "data": data,
        "layout": {
            **WIDE,
            "barmode": "group",
            "xaxis": axis("day received (UTC)", type="date", dtick=86_400_000),
            "yaxis": axis("items"),
            "legend": LEGEND_ON_TOP,
        },
    }


def _heatmap(z, x, y, title_x: str, title_y: str, colorbar: str, **trace) -> dict:
    return {
        "data": [
            {
                "type": "heatmap",
                "z": z,
                "x": x,
                "y": y,
                # Plotly's "Blues" runs dark to light; reversed, more is darker.
                "colorscale": "Blues",
                "reversescale": True,
                "colorbar": {"title": {"text": colorbar}},
                **trace,
            }
        ],
        "layout": {
            **LAYOUT,
            "margin": {"l": 180, "r": 20, "t": 30, "b": 120},
            "height": max(280, 160 + 26 * len(y)),
            "xaxis": axis(title_x, type="category"),
            "yaxis": axis(title_y, type="category"),
        },
    }


def segment_lift_figure(heatmap: dict) -> dict:
    """Mean lift of each label (columns) among the customers of each trait value (rows)."""
    figure = _heatmap(
        heatmap["lift"],
        heatmap["labels"],
        [str(value) for value in heatmap["values"]],
        "label",
        heatmap["trait"],
        "mean lift",
        colorscale="YlOrRd",
        reversescale=False,
        hovertemplate="%{y} · %{x}: lift %{z:.2f}<extra></extra>",
    )
    return figure


def weight_histograms_figure(weights: list[dict], low: float, high: float) -> dict:
    """Share of customers per weight bin of [low, high) (columns), per label (rows)."""
    bins = len(weights[0]["counts"]) if weights else 0
    width = (high - low) / bins if bins else 0.0
    centres = [f"{low + width * (i + 0.5):.3f}" for i in range(bins)]
    shares = []
    for row in weights:
        total = sum(row["counts"]) or 1
        shares.append([count / total for count in row["counts"]])
    return _heatmap(
        shares,
        centres,
        [row["label"] for row in weights],
        "weight (posterior mean response rate)",
        "label",
        "share of customers",
        hovertemplate="%{y} · weight ≈ %{x}: %{z:.1%} of customers<extra></extra>",
    )


def content_gap_figure(gaps: dict) -> dict:
    """Active messages per label (rows) and channel (columns); empty cells are the gaps."""
    return _heatmap(
        gaps["counts"],
        gaps["channels"],
        gaps["labels"],
        "channel",
        "label",
        "messages",
        texttemplate="%{z}",
        hovertemplate="%{y} on %{x}: %{z} messages<extra></extra>",
    )


def message_map_figure(messages: list[dict]) -> dict:
    """Messages on a 2-D map of their texts; a colour per cluster of near-duplicates."""
    clustered = [m for m in messages if m["near_duplicates"]]
    alone = [m for m in messages if not m["near_duplicates"]]

    def trace(rows, name, colour):
        return {
            "type": "scatter",
            "mode": "markers",
            "name": name,
            "x": [m["x"] for m in rows],
            "y": [m["y"] for m in rows],
            "text": [f"{m['key']}: {m['subject']}" for m in rows],
            "marker": {"size": 9, "color": colour},
            "hovertemplate": "%{text}<extra></extra>",
        }

    data = [trace(alone, "no near-duplicate", MUTED)]
    if clustered:
        data.append(
            {
                **trace(clustered, "has near-duplicates", ACCENT),
                "marker": {
                    "size": 11,
                    "color": [m["cluster"] for m in clustered],
                    "colorscale": "Viridis",
                },
            }
        )
    return {
        "data": data,
        "layout": {
            **WIDE,
            "height": 420,
            "xaxis": axis("first text direction", zeroline=False),
            "yaxis": axis("second text direction", zeroline=False),
            "legend": LEGEND_ON_TOP,
        },
    }


def lead_times_figure(leads: list[dict], edges: list[float]) -> dict:
    """Share of each action's goals (rows) by hours from the action to the goal (columns)."""
    centres = [f"{(lo + hi) / 2:.1f}" for lo, hi in itertools.pairwise(edges)]
    shares = [[count / (sum(row["counts"]) or 1) for count in row["counts"]] for row in leads]
    return _heatmap(
        shares,
        centres,
        [row["event_name"] for row in leads],
        "hours from the action to the goal (bin centre)",
        "action",
        "share of its goals",
        customdata=[row["counts"] for row in leads],
        hovertemplate="%{y}, goal after ≈ %{x} h: %{customdata} goals (%{z:.0%})<extra></extra>",
    )


def customer_timeline_figure(timeline: list[dict]) -> dict:
    """A customer's events over time, one row of markers per kind."""
    kinds = ["sends", "opens", "goals", "priming", "other"]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": kind,
                "x": [row["occurred_at"].isoformat() for row in timeline if row["kind"] == kind],
                "y": [kind] * sum(1 for row in timeline if row["kind"] == kind),
                "text": [
                    f"{row['name']} {row['message_key']}".strip()
                    for row in timeline
                    if row["kind"] == kind
                ],
                "marker": {"size": 10, "color": KIND_COLOURS[kind], "symbol": "line-ns-open"},
                "hovertemplate": "%{x}: %{text}<extra></extra>",
            }
            for kind in kinds
            if any(row["kind"] == kind for row in timeline)
        ],
        "layout": {
            **WIDE,
            "height": 240,
            "margin": {"l": 80, "r": 20, "t": 20, "b": 40},
            "xaxis": {"type": "date"},
            "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": kinds[::-1]},
            "showlegend": False,
        },
    }
