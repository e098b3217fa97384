"""Rolling evaluation: every send after the cut-off scored by the memory of the night before.

The frozen evaluation learns once, at the cut-off, and scores weeks of sends with it. The
product recomputes nightly, so this one re-cuts at midnight before each day with sends (at most
``max_cuts`` of them, evenly spread, when the test period is long): memory, replay and model
are refitted from the events before each cut, exactly as at the cut-off, and each send is
scored by the latest cut at or before it. No default is tuned on the test period.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from memory.scoring.evaluation import metrics, test_sends
from memory.scoring.frames import EngineConfig
from memory.scoring.model import calibrated_p, candidate_features
from memory.scoring.pipeline import compute_memory, fit_model

DAY_H = 24.0


def nightly_cuts(send_t: np.ndarray, cutoff: float, max_cuts: int = 8) -> np.ndarray:
    """Return the midnights (hours since the epoch) before each day with sends, first the
    cut-off itself; at most max_cuts, evenly spread, always keeping the first."""
    midnights = np.unique(np.floor(send_t / DAY_H) * DAY_H)
    cuts = np.unique(np.r_[cutoff, midnights[midnights > cutoff]])
    if cuts.size > max_cuts:
        cuts = cuts[np.unique(np.linspace(0, cuts.size - 1, max_cuts).round().astype(int))]
    return cuts


def rolling_scores(
    events: pl.DataFrame,
    messages: pl.DataFrame,
    message_labels: pl.DataFrame,
    config: EngineConfig,
    cutoff: float,
    variants: dict[str, tuple[str, ...]],
    *,
    traits: pl.DataFrame | None = None,
    max_cuts: int = 8,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (scores per variant over all sends after the cut-off, one row per cut).

    The first frame has the columns of ``evaluation.SCORE_SCHEMA``; the second: cut, sends,
    goal_rate, and the full memory's mean p when ``"full memory"`` is a variant.
    """
    progress = on_progress or (lambda stage, done, total: None)
    test = test_sends(events, config, cutoff)
    t = test["t"].to_numpy()
    cuts = nightly_cuts(t, cutoff, max_cuts)
    scored = {name: np.full(test.height, np.nan) for name in variants}
    per_cut = []
    for done, cut in enumerate(cuts):
        progress(f"rolling cut {done + 1}/{cuts.size}", done, cuts.size)
        upper = cuts[done + 1] if done + 1 < cuts.size else np.inf
        rows = np.flatnonzero((t >= cut) & (t < upper))
        if not rows.size:
            continue
        result = compute_memory(events, messages, message_labels, config, cut, traits=traits)
        features = candidate_features(
            result.state,
            test["customer"].to_numpy()[rows],
            test["message"].to_numpy()[rows],
        )
        for name, feature_names in variants.items():
            model = fit_model(result.replay, feature_names, config)
            scored[name][rows] = calibrated_p(model, features)
        goal = test["goal"].to_numpy()[rows]
        per_cut.append(
            {
                "cut": float(cut),
                "sends": int(rows.size),
                "goal_rate": float(goal.mean()),
                "mean_p": float(np.mean(scored.get("full memory", scored[name])[rows])),
            }
        )
    progress("done", cuts.size, cuts.size)
    goal = test["goal"].to_numpy().astype(np.float64)
    rows = [{"model": name, **metrics(goal, p)} for name, p in scored.items() if goal.size]
    return pl.DataFrame(rows), pl.DataFrame(per_cut)
