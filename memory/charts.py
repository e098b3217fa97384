"""Plotly figure dicts for the memory pages, built from plain rows (no ORM, no Plotly import)."""

ACCENT = "#3a5bd9"
MUTED = "#98a2b3"
LAYOUT = {
    "margin": {"l": 150, "r": 20, "t": 30, "b": 40},
    "height": 260,
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
}


def axis(title: str, **options) -> dict:
    """An axis with its title (plotly.js 3 and later draw only a title given as an object)."""
    return {"title": {"text": title}, **options}


def vertical_line(x: float, color: str) -> dict:
    """A dotted reference line across the plot at x (a baseline, or an odds ratio of 1)."""
    return {
        "type": "line",
        "x0": x,
        "x1": x,
        "yref": "paper",
        "y0": 0,
        "y1": 1,
        "line": {"dash": "dot", "color": color},
    }


def label_weights_figure(rows: list[dict], baseline_rate: float | None) -> dict:
    """Response rate per label with its interval, against the customer's own baseline."""
    rows = sorted(rows, key=lambda r: r["rate"])
    figure = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [r["name"] for r in rows],
                "x": [r["rate"] for r in rows],
                "marker": {"color": ACCENT},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [r["interval"][1] - r["rate"] for r in rows],
                    "arrayminus": [r["rate"] - r["interval"][0] for r in rows],
                    "color": MUTED,
                },
                "text": [
                    f"wins {r['thompson_share'] or 0:.0%} of draws · evidence {r['evidence']:.0f}"
                    for r in rows
                ],
                "hovertemplate": "%{y}: %{x:.1%}<br>%{text}<extra></extra>",
            }
        ],
        "layout": {
            **LAYOUT,
            "height": 80 + 36 * len(rows),
            "xaxis": axis("P(goal within the window after a send)", tickformat=".0%"),
        },
    }
    if baseline_rate is not None:
        figure["layout"]["shapes"] = [vertical_line(baseline_rate, "#b42318")]
        figure["layout"]["annotations"] = [
            {
                "x": baseline_rate,
                "yref": "paper",
                "y": 1.05,
                "showarrow": False,
                "text": "own baseline",
                "font": {"color": "#b42318", "size": 11},
            }
        ]
    return figure


def priming_figure(indicators: list[dict]) -> dict:
    """Odds ratio of the goal after each action, with its 95% interval, on a log axis."""
    rows = sorted(indicators, key=lambda r: r["odds_ratio"])
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "y": [r["event_name"] for r in rows],
                "x": [r["odds_ratio"] for r in rows],
                "marker": {"color": ACCENT, "size": 9},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [r["odds_ratio_high"] - r["odds_ratio"] for r in rows],
                    "arrayminus": [r["odds_ratio"] - r["odds_ratio_low"] for r in rows],
                    "color": MUTED,
                },
                "text": [f"lift {r['lift']:.2f} · support {r['support']}" for r in rows],
                "hovertemplate": "%{y}: OR %{x:.2f}<br>%{text}<extra></extra>",
            }
        ],
        "layout": {
            **LAYOUT,
            "height": 100 + 36 * len(rows),
            "xaxis": axis("odds ratio of the goal soon after (log scale)", type="log"),
            "shapes": [vertical_line(1, MUTED)],
        },
    }


def habituation_curve_figure(curve: list[dict]) -> dict:
    """Open and goal rates by habituation load, with the fitted decay of the goal rate."""
    centers = [r.get("mean_load", 0.0) for r in curve]
    series = [
        ("goal rate", "goal_rate", ACCENT, "markers+lines"),
        ("open rate", "open_rate", MUTED, "markers+lines"),
        ("fitted goal rate", "fitted_goal_rate", "#b42318", "lines"),
    ]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": mode,
                "name": name,
                "x": centers,
                "y": [r.get(key) for r in curve],
                "line": {"color": color},
            }
            for name, key, color, mode in series
            if any(r.get(key) is not None for r in curve)
        ],
        "layout": {
            **LAYOUT,
            "margin": {"l": 60, "r": 20, "t": 30, "b": 40},
            "height": 300,
            "xaxis": axis("habituation load H at the send"),
            "yaxis": axis("rate", tickformat=".0%"),
            "legend": {"orientation": "h"},
        },
    }


def reliability_figure(rows: list[dict], ece: dict[str, float] | None = None) -> dict:
    """Calibration: mean predicted probability against the observed goal rate, per model.

    ``ece``: each model's expected calibration error, shown in its legend entry.
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    ece = ece or {}
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "perfect calibration",
            "x": [0, 1],
            "y": [0, 1],
            "line": {"dash": "dot", "color": MUTED},
        }
    ]
    for model in models:
        points = [r for r in rows if r["model"] == model]
        data.append(
            {
                "type": "scatter",
                "mode": "markers+lines",
                "name": f"{model} (ECE {ece[model]:.3f})" if model in ece else model,
                "x": [r["mean_p"] for r in points],
                "y": [r["goal_rate"] for r in points],
                "text": [f"{r['sends']} sends" for r in points],
            }
        )
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
            "height": 420,
            "title": {"text": "Reliability: predicted against observed, by decile"},
            "xaxis": axis("mean predicted P(goal)", range=[0, 1]),
            "yaxis": axis("observed goal rate", range=[0, 1]),
        },
    }


def scores_figure(rows: list[dict]) -> dict:
    """AUC of each model, with the log loss in the hover."""
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [r["model"] for r in rows],
                "x": [r["auc"] for r in rows],
                "marker": {"color": ACCENT},
                "text": [f"{r['auc']:.3f}" for r in rows],
                "textposition": "outside",
                "customdata": [r["log_loss"] for r in rows],
                "hovertemplate": "%{y}: AUC %{x:.3f}, log loss %{customdata:.4f}<extra></extra>",
            }
        ],
        "layout": {
            **LAYOUT,
            "margin": {"l": 230, "r": 40, "t": 40, "b": 50},
            "height": 80 + 40 * len(rows),
            "title": {"text": "AUC on the sends after the cut-off"},
            "xaxis": axis("AUC", range=[0.5, 1.0]),
            "yaxis": {"autorange": "reversed"},
        },
    }


def model_effects_figure(rows: list[dict]) -> dict:
    """How the odds of the goal change for one standard deviation of each model feature."""
    rows = sorted(rows, key=lambda r: abs(r["effect_per_sd"]))
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "base": 1,
                "y": [r["feature"] for r in rows],
                "x": [r["odds_per_sd"] - 1 for r in rows],
                "marker": {"color": [ACCENT if r["effect_per_sd"] >= 0 else MUTED for r in rows]},
                "text": [f"x{r['odds_per_sd']:.2f}" for r in rows],
                "textposition": "outside",
                "customdata": [r["meaning"] for r in rows],
                "hovertemplate": "%{y}: odds %{text} per SD<br>%{customdata}<extra></extra>",
            }
        ],
        "layout": {
            **LAYOUT,
            "height": 80 + 30 * len(rows),
            "xaxis": axis("odds of the goal, times, for one standard deviation more"),
            "shapes": [vertical_line(1, MUTED)],
        },
    }


ARM_NAMES = {"primer": "Primer's choice", "random": "random message", "no_memory": "no memory"}


def uplift_figure(arms: list[dict]) -> dict:
    """Goal rate per holdout arm with its 95% interval (arms with resolved sends only)."""
    rows = [arm for arm in arms if arm["sends"] and arm["goal_rate"]["value"] is not None]
    rate = [arm["goal_rate"] for arm in rows]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "y": [ARM_NAMES.get(arm["arm"], arm["arm"]) for arm in rows],
                "x": [r["value"] for r in rate],
                "marker": {"color": ACCENT, "size": 10},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [(r["high"] or r["value"]) - r["value"] for r in rate],
                    "arrayminus": [r["value"] - (r["low"] or r["value"]) for r in rate],
                    "color": MUTED,
                },
                "text": [f"{arm['goals']} of {arm['sends']} sends" for arm in rows],
                "hovertemplate": "%{y}: %{x:.3f}<br>%{text}<extra></extra>",
            }
        ],
        "layout": {
            **LAYOUT,
            "height": 100 + 40 * len(rows),
            "xaxis": axis(
                "goal rate after a send, within the campaign's window", rangemode="tozero"
            ),
        },
    }
