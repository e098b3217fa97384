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
from memory.models import Decision, Event
from memory.recompute.inputs import EngineInputs, engine_inputs
from memory.recompute.plan import engine_config
from memory.scoring.decisions import decision_values
from memory.scoring.evaluation import VARIANTS, Evaluation, evaluate, with_window
from memory.scoring.model import ALL_FEATURES
from memory.scoring.population_fit import fit_model
from memory.scoring.rolling import rolling_scores
from memory.selectors import replay_level_rows


def memory_evaluate(
    *,
    workspace: Workspace,
    cutoff: datetime,
    window_h: float,
    randomised_sends: bool = False,
    segment_traits: tuple[str, ...] = ("gender", "income"),
    rolling: bool = True,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Evaluation:
    """Learn from events strictly before the cut-off; score the sends after it, per model.

    Also value the decision policies (only with ``randomised_sends`` declared) and, with
    ``rolling``, re-cut nightly after the cut-off as the product recomputes.
    """
    inputs = engine_inputs(
        workspace=workspace,
        as_of=None,
        customers=CustomerFilter(),
        trait_keys=trait_keys_of(workspace=workspace),
    )
    config = with_window(engine_config(workspace), window_h)
    moment = hours_since_epoch(cutoff)
    frames = (inputs.events, inputs.catalogue.messages, inputs.catalogue.message_labels)
    evaluation = evaluate(
        *frames, config, moment, traits=inputs.engine_traits, on_progress=on_progress
    )
    if evaluation.test_sends == 0 or evaluation.memory is None:
        return evaluation
    evaluation.decisions = decision_values(
        events=inputs.events,
        state=evaluation.memory.state,
        model=fit_model(evaluation.memory.replay, ALL_FEATURES, config),
        config=config,
        cutoff=moment,
        traits=inputs.engine_traits,
        segment_traits=segment_traits,
        randomised=randomised_sends,
        revenue=goal_revenue(
            workspace=workspace, goal_event=config.goal_event, customer_ids=inputs.customer_ids
        ),
        logged=None
        if randomised_sends
        else logged_decisions(workspace=workspace, cutoff=cutoff, inputs=inputs),
    )
    if rolling:
        evaluation.rolling, evaluation.rolling_cuts = rolling_scores(
            *frames,
            config,
            moment,
            VARIANTS,
            traits=inputs.engine_traits,
            on_progress=on_progress,
        )
    return evaluation


def logged_decisions(
    *, workspace: Workspace, cutoff: datetime, inputs: EngineInputs
) -> pl.DataFrame:
    """Return the served decisions matched to sends at or after the cut-off, in the engine's
    dense ids: customer, t (the send), message, eligible and propensities (lists, same order)."""
    rows = (
        Decision.objects.for_workspace(workspace)
        .filter(send_event_id__isnull=False, sent_at__gte=cutoff)
        .values_list("customer_id", "sent_at", "message_id", "eligible", "propensities")
    )
    dense_customer = {int(c): i for i, c in enumerate(inputs.customer_ids.to_list())}
    lookup = inputs.catalogue.messages.select("message_id", "message")
    dense_message = dict(
        zip(lookup["message_id"].to_list(), lookup["message"].to_list(), strict=True)
    )
    out = []
    for customer_id, sent_at, message_id, eligible, propensities in rows.iterator(
        chunk_size=20_000
    ):
        pairs = [(dense_message.get(m), p) for m, p in zip(eligible, propensities, strict=False)]
        if customer_id not in dense_customer or message_id not in dense_message:
            continue
        if any(m is None for m, _ in pairs):
            continue  # a message since deleted: the decision's alternatives are unknown
        out.append(
            (
                dense_customer[customer_id],
                hours_since_epoch(sent_at),
                dense_message[message_id],
                [m for m, _ in pairs],
                [float(p) for _, p in pairs],
            )
        )
    return pl.DataFrame(
        out,
        schema={
            "customer": pl.Int64,
            "t": pl.Float64,
            "message": pl.Int64,
            "eligible": pl.List(pl.Int64),
            "propensities": pl.List(pl.Float64),
        },
        orient="row",
    )


def goal_revenue(*, workspace: Workspace, goal_event: str, customer_ids: pl.Series) -> pl.DataFrame:
    """Return customer (dense), t, revenue of the goal events that carry a revenue."""
    # A read of its own (not in selectors.py) while the engine reads move to memory/db/.
    rows = (
        Event.objects.for_workspace(workspace)
        .filter(name=goal_event, properties__has_key="revenue")
        .values_list("customer_id", "occurred_at", "properties__revenue")
    )
    frame = pl.DataFrame(
        [(c, hours_since_epoch(at), r) for c, at, r in rows.iterator(chunk_size=20_000)],
        schema={"customer_id": pl.Int64, "t": pl.Float64, "revenue": pl.Float64},
        orient="row",
    )
    dense = pl.DataFrame({"customer_id": customer_ids}).with_row_index("customer")
    return frame.join(dense, on="customer_id").select(
        pl.col("customer").cast(pl.Int64), "t", pl.col("revenue").cast(pl.Float64)
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
                "rolling": rolling_rows(evaluation),
                "rolling_cuts": evaluation.rolling_cuts.height
                if evaluation.rolling_cuts is not None
                else 0,
                "decisions": evaluation.decisions,
                "waves": evaluation.decisions.check.waves.to_dicts()
                if evaluation.decisions
                else [],
                "decision_tables": decision_rows(evaluation),
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


def rolling_rows(evaluation: Evaluation) -> list[dict]:
    """Return per model the frozen and the rolling AUC, log loss and ECE, side by side."""
    if evaluation.rolling is None or evaluation.rolling.height == 0:
        return []
    rolling = {row["model"]: row for row in evaluation.rolling.to_dicts()}
    return [
        {
            "model": row["model"],
            **{f"frozen_{key}": row[key] for key in ("auc", "log_loss", "ece", "mean_p")},
            **{
                f"rolling_{key}": rolling[row["model"]][key]
                for key in ("auc", "log_loss", "ece", "mean_p")
            },
        }
        for row in evaluation.scores.to_dicts()
        if row["model"] in rolling
    ]


def decision_rows(evaluation: Evaluation) -> dict[str, list[dict]]:
    """Return per outcome one row per policy: matches, IPS, SNIPS, DR and the difference from
    the average customer's best (DR where there is an outcome model, else SNIPS)."""
    decisions = evaluation.decisions
    if decisions is None:
        return {}
    tables = {}
    for outcome, values in decisions.values.items():
        rows = []
        for value in values:
            key = "dr" if "dr" in value.differences else "snips"
            rows.append(
                {
                    "policy": value.name,
                    "matches": value.matches,
                    "estimates": value.estimates,
                    "difference_by": key.upper(),
                    "difference": value.differences[key],
                    "detectable": decisions.detectable.get(value.name)
                    if outcome == "goal"
                    else None,
                }
            )
        tables[outcome] = rows
    return tables
