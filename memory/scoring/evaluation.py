"""Offline evaluation: memory from before a cut-off, predictions for the sends after it.

Every model is scored on the same sends: those at or after the cut-off whose window closes
inside the data (the same attribution rule the engine learns with). Variants refit only the
scoring model's coefficients on the replayed slices before the cut-off, with a subset of the
features: the population rate per message (the "average customer"), the customer's baseline
alone, the full memory, and the full memory with each memory (and the message x frequency
interaction) removed (ablation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from sklearn.metrics import log_loss, roc_auc_score

from memory.scoring.decisions import Decisions
from memory.scoring.frames import EngineConfig, normalise_events
from memory.scoring.model import ALL_FEATURES, FEATURE_GROUPS, candidate_features, predict
from memory.scoring.outcomes import events_before, send_outcomes
from memory.scoring.pipeline import MemoryResult, compute_memory
from memory.scoring.population_fit import fit_model


def _without(group: str) -> tuple[str, ...]:
    return tuple(f for f in ALL_FEATURES if f not in FEATURE_GROUPS[group])


VARIANTS: dict[str, tuple[str, ...]] = {
    "population rate per message": FEATURE_GROUPS["message"],
    "customer baseline only": FEATURE_GROUPS["baseline"],
    "full memory": ALL_FEATURES,
    "full memory without the interaction": _without("interaction"),
    "full memory without associative": _without("associative"),
    "full memory without engagement": tuple(f for f in ALL_FEATURES if f != "engagement"),
    "full memory without habituation": _without("habituation"),
    "full memory without priming": _without("priming"),
}


@dataclass
class Evaluation:
    """Hold the scores of every variant and what they were measured on."""

    cutoff: float
    window_h: float
    training_sends: int
    test_sends: int
    goal_rate: float
    scores: pl.DataFrame  # SCORE_SCHEMA: discrimination and calibration per model
    reliability: pl.DataFrame  # model, bin, mean_p, goal_rate, sends
    predictions: pl.DataFrame  # customer, message, t, goal, one p column per model
    # Per replayed slice before the cut-off, newest first: goal rate against the full memory's
    # mean p (the model's replay_levels), to set beside the scored sends' level.
    replay_levels: list[dict] = field(default_factory=list)
    # Scored sends to customers without an event before the cut-off: scored from the population
    # and their trait segment (``cold_start`` in predictions), not refused.
    cold_start_sends: int = 0
    # What the memory knew at the cut-off, for the decision policies.
    memory: MemoryResult | None = field(default=None, repr=False)
    decisions: Decisions | None = None
    # The rolling evaluation beside this frozen one (``rolling.rolling_scores``).
    rolling: pl.DataFrame | None = None
    rolling_cuts: pl.DataFrame | None = None


def test_sends(events: pl.DataFrame, config: EngineConfig, cutoff: float) -> pl.DataFrame:
    """Return sends at or after the cut-off whose window closes inside the data, with outcome."""
    everything, horizon = events_before(normalise_events(events), None)
    outcomes = send_outcomes(everything, config, horizon)
    return outcomes.filter((pl.col("t") >= cutoff) & pl.col("resolved"))


SCORE_SCHEMA = {
    "model": pl.Utf8,
    "auc": pl.Float64,
    "log_loss": pl.Float64,
    "brier": pl.Float64,
    "top_decile_rate": pl.Float64,
    "mean_p": pl.Float64,
    "goal_rate": pl.Float64,
    "ece": pl.Float64,
}


def metrics(goal: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Return AUC, log loss, Brier, top-decile goal rate, mean p, goal rate and the ECE."""
    top = np.argsort(-p, kind="stable")[: max(1, p.size // 10)]
    single_class = goal.min() == goal.max()
    return {
        "auc": float("nan") if single_class else float(roc_auc_score(goal, p)),
        "log_loss": float(log_loss(goal, p, labels=[0, 1])),
        "brier": float(np.mean((p - goal) ** 2)),
        "top_decile_rate": float(goal[top].mean()),
        **calibration(goal, p),
    }


def calibration(goal: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float]:
    """Return calibration-in-the-large (mean p against the goal rate) and the ECE over bins.

    ECE = sum over the equal-count bins of p (those of ``reliability``) of the bin's share of
    sends times |mean p - goal rate| in it: the level error of ``mean_p - goal_rate`` can cancel
    between bins, this cannot.
    """
    table = reliability(goal, p, bins)
    share = table["sends"].to_numpy() / max(p.size, 1)
    gap = np.abs(table["mean_p"].to_numpy() - table["goal_rate"].to_numpy())
    return {
        "mean_p": float(np.mean(p)),
        "goal_rate": float(np.mean(goal)),
        "ece": float(np.sum(share * gap)),
    }


def reliability(goal: np.ndarray, p: np.ndarray, bins: int = 10) -> pl.DataFrame:
    """Return the calibration table: sends in deciles of p, mean p against the goal rate."""
    frame = pl.DataFrame({"p": p, "goal": goal}).with_columns(
        (pl.col("p").rank("ordinal") * bins / (p.size + 1)).floor().cast(pl.Int64).alias("bin")
    )
    return (
        frame.group_by("bin")
        .agg(
            pl.col("p").mean().alias("mean_p"),
            pl.col("goal").mean().alias("goal_rate"),
            pl.len().alias("sends"),
        )
        .sort("bin")
    )


def evaluate(
    events: pl.DataFrame,
    messages: pl.DataFrame,
    message_labels: pl.DataFrame,
    config: EngineConfig,
    cutoff: float,
    *,
    traits: pl.DataFrame | None = None,
    variants: dict[str, tuple[str, ...]] = VARIANTS,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Evaluation:
    """Learn from events before the cut-off, then score every variant on the sends after it.

    ``on_progress(stage, done, total)`` hears of each step: the memory, then each variant.
    """
    total = 1 + len(variants)
    progress = on_progress or (lambda stage, done, total: None)
    progress("memory before the cut-off", 0, total)
    result: MemoryResult = compute_memory(
        events, messages, message_labels, config, as_of=cutoff, traits=traits
    )
    test = test_sends(events, config, cutoff)
    goal = test["goal"].to_numpy().astype(np.float64)
    features = candidate_features(
        result.state, test["customer"].to_numpy(), test["message"].to_numpy()
    )
    rows, tables = [], []
    known = normalise_events(events).filter(pl.col("t") < cutoff)["customer"].unique()
    predictions = test.select(
        "customer",
        "message",
        "t",
        "goal",
        (~pl.col("customer").is_in(known.implode())).alias("cold_start"),
    )
    for done, (name, feature_names) in enumerate(variants.items(), start=1):
        progress(name, done, total)
        model = fit_model(result.replay, feature_names, config)
        p, _ = predict(model, features)
        if goal.size:
            rows.append({"model": name, **metrics(goal, p)})
            tables.append(reliability(goal, p).with_columns(pl.lit(name).alias("model")))
        predictions = predictions.with_columns(pl.Series(name, p))
    progress("done", total, total)
    return Evaluation(
        cutoff=cutoff,
        window_h=config.attribution_window_h,
        training_sends=int(result.stats.get("resolved_sends", 0)),
        test_sends=test.height,
        goal_rate=float(goal.mean()) if goal.size else float("nan"),
        scores=pl.DataFrame(rows, schema=SCORE_SCHEMA),
        reliability=pl.concat(tables) if tables else pl.DataFrame(),
        predictions=predictions,
        replay_levels=list(result.model.replay_levels),
        cold_start_sends=int(predictions["cold_start"].sum()),
        memory=result,
    )


def with_window(config: EngineConfig, window_h: float) -> EngineConfig:
    """Return the configuration with another attribution window."""
    return replace(config, attribution_window_h=window_h)
