"""Evaluate the memory offline on a workspace's own history, and write the report."""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import plotly.io
import polars as pl
from django.template.loader import render_to_string

from campaigns.models import Workspace
from memory import charts
from memory.db.reads import CustomerFilter, hours_since_epoch, trait_keys_of
from memory.recompute.inputs import engine_inputs
from memory.recompute.plan import engine_config
from memory.scoring.evaluation import Evaluation, evaluate, with_window
from memory.selectors import replay_level_rows


def memory_evaluate(
    *,
    workspace: Workspace,
    cutoff: datetime,
    window_h: float,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Evaluation:
    """Learn from events strictly before the cut-off; score the sends after it, per model."""
    inputs = engine_inputs(
        workspace=workspace,
        as_of=None,
        customers=CustomerFilter(),
        trait_keys=trait_keys_of(workspace=workspace),
    )
    return evaluate(
        inputs.events,
        inputs.catalogue.messages,
        inputs.catalogue.message_labels,
        with_window(engine_config(workspace), window_h),
        hours_since_epoch(cutoff),
        traits=inputs.engine_traits,
        on_progress=on_progress,
    )


def evaluation_report_write(
    *, workspace: Workspace, evaluation: Evaluation, cutoff: datetime, path: Path
) -> None:
    """Write a self-contained HTML report (Plotly inlined once: it opens offline)."""
    rows = [
        {**row, "calibration_in_the_large": row["mean_p"] - row["goal_rate"]}
        for row in evaluation.scores.to_dicts()
    ]
    figures = [
        charts.reliability_figure(
            evaluation.reliability.to_dicts(), {row["model"]: row["ece"] for row in rows}
        ),
        charts.scores_figure(rows),
    ]
    html_figures = [
        plotly.io.to_html(figure, include_plotlyjs=(index == 0), full_html=False)
        for index, figure in enumerate(figures)
    ]
    path.write_text(
        render_to_string(
            "memory/evaluation_report.html",
            {
                "workspace": workspace,
                "evaluation": evaluation,
                "cutoff": cutoff,
                "rows": rows,
                "figures": html_figures,
                "levels": levels_over_time(evaluation, cutoff),
            },
        ),
        encoding="utf-8",
    )


def levels_over_time(evaluation: Evaluation, cutoff: datetime) -> list[dict]:
    """Return the goal rate against the full memory's mean p, oldest first: each replayed slice
    it learned from (the newest one, its calibration slice, marked), then the scored sends.
    Empty without replayed slices or a full-memory score."""
    full = evaluation.scores.filter(pl.col("model") == "full memory")
    if not evaluation.replay_levels or full.height == 0:
        return []
    replayed = replay_level_rows(evaluation.replay_levels)[::-1]
    for row in replayed:
        row["kind"] = "replayed"
    replayed[-1]["kind"] = "replayed, calibration"
    goal_rate, mean_p = full["goal_rate"][0], full["mean_p"][0]
    scored = {
        "kind": "scored",
        "from": cutoff,
        "to": None,
        "sends": evaluation.test_sends,
        "goal_rate": goal_rate,
        "mean_p": mean_p,
        "gap": mean_p - goal_rate,
    }
    return [*replayed, scored]
