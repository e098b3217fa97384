"""Score the calibration candidates on Starbucks data before 504 h and apply the written rule.

The rule and the candidates are in docs/memory.md (Calibration); the offline evaluation's
readers and checks are shared with bench/starbucks_offline.py.

    .venv/bin/python bench/starbucks_calibration.py [--no-traits]
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from starbucks_offline import GOAL_EVENT, OPEN_EVENT, SEND_EVENT, validation_checks

from memory.scoring.evaluation import metrics as score_metrics
from memory.scoring.frames import EngineConfig
from memory.scoring.model import (
    ALL_FEATURES,
    ScoringModel,
    candidate_features,
    feature_matrix,
    linear_predictor,
    predict,
)
from memory.scoring.pipeline import fit_model
from memory.scoring.regression import fit_logistic, logit


def _with_message_level(state, customers, messages, association_override=None):
    """Return the model features plus ``message_level``: the logit of the mean message rate."""
    features = candidate_features(state, customers, messages, association_override)
    level = float(logit(np.array([np.mean(state.message_rate)]))[0])
    features["message_level"] = np.full(features["message"].size, level)
    return features


def _shifted(features: dict[str, np.ndarray], damping: float) -> dict[str, np.ndarray]:
    """Return the features with ``damping`` times the mean message logit taken out of message."""
    return {**features, "message": features["message"] - damping * features["message_level"]}


def _weighted_logistic(design: np.ndarray, outcome: np.ndarray, weights: np.ndarray, l2: float):
    """Return (intercept, slopes) of a ridge logistic regression with case weights."""
    x = np.column_stack([np.ones(outcome.size), design])
    penalty = np.r_[0.0, np.full(design.shape[1], l2)]
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        p = expit(x @ beta)
        gradient = x.T @ (weights * (outcome - p)) - penalty * beta
        curvature = (x * (weights * p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(curvature, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return beta


def _fit_variant(slices, names, config, *, per_slice: bool, half_life_slices: float | None):
    """Fit like ``fit_model`` (all slices, Platt on the newest) with per-slice intercepts/weights.

    Per-slice intercepts: one 0/1 column per older slice, so the fitted intercept is the newest
    slice's level. Weights: 0.5 ** (j / half-life) for the j-th newest slice.
    """
    design = np.vstack([feature_matrix(s[0], names) for s in slices])
    outcome = np.concatenate([s[1] for s in slices])
    index = np.concatenate([np.full(s[1].size, j) for j, s in enumerate(slices)])
    varying = [i for i in range(design.shape[1]) if np.ptp(design[:, i]) > 0]
    used = tuple(names[i] for i in varying)
    design = design[:, varying]
    centre, scale = design.mean(axis=0), design.std(axis=0)
    standard = (design - centre) / scale
    extra = (
        np.column_stack([(index == j).astype(float) for j in range(1, len(slices))])
        if per_slice and len(slices) > 1
        else np.zeros((outcome.size, 0))
    )
    weights = (
        np.ones(outcome.size) if half_life_slices is None else 0.5 ** (index / half_life_slices)
    )
    beta = _weighted_logistic(np.column_stack([standard, extra]), outcome, weights, config.model_l2)
    slopes = beta[1 : 1 + len(used)] / scale
    model = ScoringModel(
        features=used, coefficients=np.r_[beta[0] - float(np.sum(slopes * centre)), slopes]
    )
    newest_features, newest_outcome = slices[0]
    raw = linear_predictor(model, newest_features)
    platt = fit_logistic(raw[:, None], newest_outcome, l2=1e-6)
    model.calibration = (float(platt[0]), float(platt[1]))
    return model


def _isotonic_p(slices, test_features, config) -> np.ndarray:
    """Return p from the default coefficients with isotonic calibration on the newest slice."""
    model = fit_model(slices, ALL_FEATURES, config)
    raw = linear_predictor(model, slices[0][0])
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4)
    isotonic.fit(raw, slices[0][1])
    return isotonic.predict(linear_predictor(model, test_features))


def calibration_candidates(config: EngineConfig) -> dict:
    """Return the calibration candidates of docs/memory.md: name -> (slices, features) -> p."""

    def platt(damping: float = 0.0, per_slice: bool = False, half_life: float | None = None):
        def p_of(slices, test_features):
            slices = [(_shifted(f, damping), y) for f, y in slices]
            if per_slice or half_life is not None:
                model = _fit_variant(
                    slices, ALL_FEATURES, config, per_slice=per_slice, half_life_slices=half_life
                )
            else:
                model = fit_model(slices, ALL_FEATURES, config)
            return predict(model, _shifted(test_features, damping))[0]

        return p_of

    return {
        "default": platt(),
        "1 no trend (message relative)": platt(damping=1.0),
        "2 damped trend (half)": platt(damping=0.5),
        "3 per-slice intercepts": platt(per_slice=True),
        "4 no trend + per-slice intercepts": platt(damping=1.0, per_slice=True),
        "5 recency-weighted slices": platt(half_life=1.0),
        "6 isotonic on the newest slice": lambda slices, f: _isotonic_p(slices, f, config),
    }


def choose_calibration(use_traits: bool) -> None:
    """Score the calibration candidates on the checks before the cut-off; apply the rule."""
    started = time.perf_counter()
    config = EngineConfig(goal_event=GOAL_EVENT, send_event=SEND_EVENT, open_event=OPEN_EVENT)
    with mock.patch("memory.scoring.population_fit.candidate_features", _with_message_level):
        checks = validation_checks(config, use_traits, features_of=_with_message_level)
    print(
        "Calibration candidates, events before 504 h only. Per check: AUC, log loss, "
        "mean p - goal rate (CITL), ECE over deciles of p."
    )
    for name, (_, _, outcome) in checks.items():
        print(f"  {name}: {outcome.size} sends, goal rate {outcome.mean():.3f}")
    means = {}
    for name, p_of in calibration_candidates(config).items():
        cells = []
        for slices, test_features, outcome in checks.values():
            p = np.clip(p_of(slices, test_features), 1e-6, 1 - 1e-6)
            cells.append(score_metrics(outcome, p))
        mean = {key: float(np.mean([c[key] for c in cells])) for key in cells[0]}
        mean["citl_abs"] = float(np.mean([abs(c["mean_p"] - c["goal_rate"]) for c in cells]))
        means[name] = mean
        text = " | ".join(
            f"{c['auc']:.4f} {c['log_loss']:.4f} {c['mean_p'] - c['goal_rate']:+.3f} {c['ece']:.3f}"
            for c in cells
        )
        print(
            f"{name:36s} {text} || mean {mean['auc']:.4f} {mean['log_loss']:.4f} "
            f"|CITL| {mean['citl_abs']:.3f} ECE {mean['ece']:.4f}"
        )
    default = means["default"]
    eligible = {
        name: m
        for name, m in means.items()
        if m["auc"] >= default["auc"] - 0.001 and m["log_loss"] <= default["log_loss"] + 0.001
    }
    best = min(eligible.values(), key=lambda m: m["ece"])["ece"]
    close = {n: m for n, m in eligible.items() if m["ece"] <= best + 0.002}
    pick = min(close, key=lambda n: close[n]["log_loss"])
    chosen = pick if means[pick]["ece"] <= default["ece"] - 0.005 else "default"
    print(f"eligible: {', '.join(eligible)}; chosen by the rule: {chosen}")
    print(f"calibration candidates {time.perf_counter() - started:.1f} s\n")


def main() -> None:
    """Run the calibration study from the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-traits", action="store_true", help="leave demographics out")
    choose_calibration(not parser.parse_args().no_traits)


if __name__ == "__main__":
    main()
