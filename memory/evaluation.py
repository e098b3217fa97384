"""Evaluate the memory offline on a workspace's own history, and write the report."""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import plotly.io
from django.template.loader import render_to_string

from campaigns.models import Workspace
from memory import charts
from memory.recompute import engine_config, engine_inputs
from memory.scoring.evaluation import Evaluation, evaluate, with_window
from memory.selectors import (
    CustomerFilter,
    hours_since_epoch,
    replay_level_rows,
    trait_keys_of,
)


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
    full = next((row for row in rows if row["model"] == "full memory"), None)
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
                "levels": replay_level_rows({"replay_levels": evaluation.replay_levels})[::-1],
                "full": full,
            },
        ),
        encoding="utf-8",
    )
