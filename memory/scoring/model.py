"""Scoring: p(goal within the window | customer, candidate message, as_of) from the memories.

logit p = a + b * (b0 + sum_f c_f x_f): a logistic combination of the memory features x_f with
coefficients c fitted on replayed history, then Platt-calibrated (a, b) on the newest replay.
Each feature's contribution b * c_f * x_f is reported, so a prompt can state every number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import sparse
from scipy.special import expit

from memory.scoring.associative import RATE_FLOOR, logit_normal_moments
from memory.scoring.frames import EngineConfig
from memory.scoring.regression import fit_logistic, logit

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "baseline": ("baseline", "frequency", "recency", "never_goal", "segment"),
    "message": ("message",),
    # How a message's pull depends on how often the customer buys (message x frequency).
    "interaction": ("message_frequency",),
    "associative": ("association", "engagement"),
    "habituation": ("habituation",),
    "priming": ("primed",),
}
ALL_FEATURES: tuple[str, ...] = tuple(f for group in FEATURE_GROUPS.values() for f in group)
# What each feature measures, in the marketer's words (the memory page's scoring model card).
FEATURE_MEANINGS: dict[str, str] = {
    "baseline": "how likely they reach the goal within the window without a message",
    "frequency": "how often they reach the goal (their Gamma-Poisson rate)",
    "recency": "how long since they last reached the goal",
    "never_goal": "they have never reached the goal",
    "segment": "how often customers of their profile reach the goal, against everyone",
    "message": "how often everyone reached the goal after this message",
    "message_frequency": "a popular message sent to a frequent customer",
    "association": "their own response to the message's labels",
    "engagement": "how often they open messages with these labels, against their usual opens",
    "habituation": "how much of this message, or similar ones, they had lately",
    "primed": "recent actions that tend to come before the goal",
}


@dataclass
class MemoryState:
    """Hold what the engine knows at one cut-off, indexed by dense customer and message ids."""

    horizon: float
    config: EngineConfig
    baseline_rate: np.ndarray
    frequency_rate_h: np.ndarray
    segment_rate_h: np.ndarray  # the trait-segment (or population) prior of the goal rate
    hours_since_goal: np.ndarray
    message_rate: np.ndarray
    association: sparse.csr_matrix  # customers x labels: log(posterior rate / prior rate)
    message_labels: sparse.csr_matrix  # messages x labels, rows sum to 1 (0 if unlabelled)
    exposure: sparse.csr_matrix  # customers x messages: decayed past sends
    similarity: sparse.csr_matrix  # messages x messages
    primed: np.ndarray
    weights: pl.DataFrame
    label_priors: pl.DataFrame
    # Population fallbacks for customers the state does not cover (fitted, not from this shard).
    pooled_baseline_rate: float = 0.5
    pooled_frequency_rate_h: float = 1e-3
    # The population's goal rate (goals over observed hours): what a segment rate is relative to.
    pooled_rate_h: float = 1e-3
    # customers x labels: log(posterior open rate / prior open rate); None: no engagement memory.
    engagement: sparse.csr_matrix | None = None

    @property
    def n_customers(self) -> int:
        """Return the number of customers the state covers."""
        return self.baseline_rate.size

    @property
    def n_messages(self) -> int:
        """Return the number of messages the state covers."""
        return self.message_rate.size


@dataclass
class ScoringModel:
    """Hold the fitted coefficients and calibration of the scoring model."""

    features: tuple[str, ...]
    coefficients: np.ndarray  # intercept first, then one per feature
    calibration: tuple[float, float] = (0.0, 1.0)
    training_rows: int = 0
    calibration_rows: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    # Each feature's standard deviation over the fitting rows (empty for older models).
    feature_scales: tuple[float, ...] = ()
    # Per replayed slice it was fitted on, newest first: its sends, the goal rate after them and
    # this model's mean p there (``population.replay_levels``; empty for older models).
    replay_levels: list[dict] = field(default_factory=list)

    def effects_per_sd(self) -> dict[str, float]:
        """Return each feature's calibrated logit change for one standard deviation of it."""
        if len(self.feature_scales) != len(self.features):
            return {}
        slope = self.calibration[1]
        return {
            name: float(slope * coefficient * scale)
            for name, coefficient, scale in zip(
                self.features, self.coefficients[1:], self.feature_scales, strict=True
            )
        }


def pair_rows(
    left: sparse.csr_matrix, right: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Return (left @ right.T)[rows[i], cols[i]] for each i without forming the full product."""
    if rows.size == 0 or left.shape[1] == 0:
        return np.zeros(rows.size)
    product = left[rows].multiply(right[cols])
    return np.asarray(product.sum(axis=1)).ravel()


def _take(values: np.ndarray, index: np.ndarray, known: np.ndarray, default: float) -> np.ndarray:
    """Return values[index] where known, else default (also when values is empty)."""
    out = np.full(index.size, default, dtype=np.float64)
    out[known] = values[index[known]]
    return out


def _customer_columns(state: MemoryState, customers: np.ndarray) -> dict[str, np.ndarray]:
    """Return the features that depend on the customer alone (pooled for unknown customers)."""
    known = customers < state.n_customers
    window = state.config.attribution_window_h
    baseline = _take(state.baseline_rate, customers, known, state.pooled_baseline_rate)
    frequency = _take(state.frequency_rate_h, customers, known, state.pooled_frequency_rate_h)
    segment = _take(state.segment_rate_h, customers, known, state.pooled_rate_h)
    since = _take(state.hours_since_goal, customers, known, np.nan)
    return {
        "baseline": logit(baseline),
        "frequency": np.log(np.maximum(frequency * window, 1e-6)),
        # Relative to the population: without traits it is 0 for everyone, whatever the time.
        "segment": np.log(np.maximum(segment, 1e-12) / max(state.pooled_rate_h, 1e-12)),
        "recency": np.where(np.isnan(since), 0.0, np.log1p(np.nan_to_num(since))),
        "never_goal": np.isnan(since).astype(np.float64),
        "primed": _take(state.primed, customers, known, 0.0),
    }


def _pooled_message(state: MemoryState) -> float:
    return float(np.mean(state.message_rate)) if state.n_messages else 0.5


def _message_frequency_of(
    state: MemoryState, message_logit: np.ndarray, log_frequency: np.ndarray
) -> np.ndarray:
    window = state.config.attribution_window_h
    return message_frequency(
        message_logit,
        log_frequency,
        float(logit(np.array([_pooled_message(state)]))[0]),
        float(np.log(max(state.pooled_frequency_rate_h * window, 1e-6))),
    )


def candidate_features(
    state: MemoryState,
    customers: np.ndarray,
    messages: np.ndarray,
    association_override: sparse.csr_matrix | None = None,
) -> dict[str, np.ndarray]:
    """Return the model features of (customer, message) candidates at the state's cut-off."""
    customers = np.asarray(customers, dtype=np.int64)
    messages = np.asarray(messages, dtype=np.int64)
    known_customer = customers < state.n_customers
    known_message = messages < state.n_messages
    columns = _customer_columns(state, customers)
    message = _take(state.message_rate, messages, known_message, _pooled_message(state))
    association_matrix = state.association if association_override is None else association_override
    both = known_customer & known_message
    association = np.zeros(customers.size)
    engagement = np.zeros(customers.size)
    habituation = np.zeros(customers.size)
    if both.any():
        association[both] = pair_rows(
            association_matrix, state.message_labels, customers[both], messages[both]
        )
        if state.engagement is not None:
            engagement[both] = pair_rows(
                state.engagement, state.message_labels, customers[both], messages[both]
            )
        habituation[both] = pair_rows(
            state.exposure, state.similarity, customers[both], messages[both]
        )
    message_logit = logit(message)
    return {
        **{name: columns[name] for name in ("baseline", "frequency", "segment", "recency")},
        "never_goal": columns["never_goal"],
        "message": message_logit,
        "message_frequency": _message_frequency_of(state, message_logit, columns["frequency"]),
        "association": association,
        "engagement": engagement,
        "habituation": habituation,
        "primed": columns["primed"],
    }


def block_features(
    state: MemoryState, customers: np.ndarray, messages: np.ndarray
) -> dict[str, np.ndarray]:
    """Return ``candidate_features`` of every customer x message pair of a block, each feature
    as a (customers, messages) matrix: sparse products instead of one row gather per pair."""
    customers = np.asarray(customers, dtype=np.int64)
    messages = np.asarray(messages, dtype=np.int64)
    shape = (customers.size, messages.size)
    known_customer = customers < state.n_customers
    known_message = messages < state.n_messages
    columns = _customer_columns(state, customers)
    message = _take(state.message_rate, messages, known_message, _pooled_message(state))
    message_logit = logit(message)
    association = np.zeros(shape)
    engagement = np.zeros(shape)
    habituation = np.zeros(shape)
    rows, cols = np.flatnonzero(known_customer), np.flatnonzero(known_message)
    if rows.size and cols.size:
        picked = np.ix_(rows, cols)
        labels_t = state.message_labels[messages[cols]].T
        if state.association.shape[1]:
            association[picked] = (state.association[customers[rows]] @ labels_t).toarray()
        if state.engagement is not None and state.engagement.shape[1]:
            engagement[picked] = (state.engagement[customers[rows]] @ labels_t).toarray()
        habituation[picked] = (
            state.exposure[customers[rows]] @ state.similarity[messages[cols]].T
        ).toarray()

    def per_customer(name: str) -> np.ndarray:
        return np.broadcast_to(columns[name][:, None], shape)

    return {
        **{name: per_customer(name) for name in ("baseline", "frequency", "segment", "recency")},
        "never_goal": per_customer("never_goal"),
        "message": np.broadcast_to(message_logit[None, :], shape),
        "message_frequency": _message_frequency_of(
            state, message_logit[None, :], columns["frequency"][:, None]
        ),
        "association": association,
        "engagement": engagement,
        "habituation": habituation,
        "primed": per_customer("primed"),
    }


def message_frequency(
    message: np.ndarray, frequency: np.ndarray, message_centre: float, frequency_centre: float
) -> np.ndarray:
    """Return (message - its centre) * (frequency - its centre): both features, centred.

    ``message`` is the logit of the message's population response rate and ``frequency`` the
    log of the customer's expected goals in a window; the centres are the population's (the
    logit of the mean message rate, the log of the mean frequency), so the product is 0 for an
    average message or an average customer and the two main effects keep their meaning.
    """
    return (message - message_centre) * (frequency - frequency_centre)


def feature_matrix(features: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """Stack the named features into an (n, k) matrix."""
    n = next(iter(features.values())).size
    if not names:
        return np.zeros((n, 0))
    return np.column_stack([features[name] for name in names])


def fit_scoring_model(
    fit_features: dict[str, np.ndarray],
    fit_outcomes: np.ndarray,
    calibration_features: dict[str, np.ndarray] | None,
    calibration_outcomes: np.ndarray | None,
    names: tuple[str, ...],
    l2: float,
) -> ScoringModel:
    """Fit the coefficients on one slice and a Platt calibration on a later slice."""
    if fit_outcomes.size == 0 and calibration_outcomes is not None:
        fit_features, fit_outcomes = calibration_features, calibration_outcomes
        calibration_features, calibration_outcomes = None, None
    if fit_outcomes.size == 0 or fit_features is None:
        return ScoringModel(
            features=names, coefficients=np.r_[logit(np.array([0.5])), np.zeros(len(names))]
        )
    # Drop features that never vary in the fitting slice: they carry no information there.
    design = feature_matrix(fit_features, names)
    varying = tuple(
        name for name, column in zip(names, design.T, strict=True) if np.ptp(column) > 0
    )
    design = feature_matrix(fit_features, varying)
    # Standardise so the ridge treats every feature alike, then map back to raw units.
    centre = design.mean(axis=0)
    scale = design.std(axis=0)
    standard = fit_logistic((design - centre) / scale, fit_outcomes.astype(np.float64), l2=l2)
    slopes = standard[1:] / scale
    coefficients = np.r_[standard[0] - float(np.sum(slopes * centre)), slopes]
    model = ScoringModel(
        features=varying,
        coefficients=coefficients,
        training_rows=fit_outcomes.size,
        feature_scales=tuple(float(value) for value in scale),
    )
    if calibration_outcomes is not None and calibration_outcomes.size >= 50:
        raw = linear_predictor(model, calibration_features)
        platt = fit_logistic(raw[:, None], calibration_outcomes.astype(np.float64), l2=1e-6)
        model.calibration = (float(platt[0]), float(platt[1]))
        model.calibration_rows = calibration_outcomes.size
    return model


def linear_predictor(model: ScoringModel, features: dict[str, np.ndarray]) -> np.ndarray:
    """Return the uncalibrated logit b0 + sum_f c_f x_f."""
    design = feature_matrix(features, model.features)
    return model.coefficients[0] + design @ model.coefficients[1:]


def calibrated_p(model: ScoringModel, features: dict[str, np.ndarray]) -> np.ndarray:
    """Return the calibrated p alone, without the contributions ``predict`` also gives."""
    a, b = model.calibration
    return expit(a + b * linear_predictor(model, features))


def predict(
    model: ScoringModel, features: dict[str, np.ndarray]
) -> tuple[np.ndarray, pl.DataFrame]:
    """Return calibrated p and a frame of per-feature contributions on the logit scale."""
    a, b = model.calibration
    design = feature_matrix(features, model.features)
    parts = {
        f"contribution_{name}": b * model.coefficients[i + 1] * design[:, i]
        for i, name in enumerate(model.features)
    }
    intercept = a + b * model.coefficients[0]
    logit_p = intercept + sum(parts.values(), np.zeros(design.shape[0]))
    contributions = pl.DataFrame(
        {"contribution_intercept": np.full(design.shape[0], intercept), **parts}
    )
    return expit(logit_p), contributions


def thompson_association(state: MemoryState, customer: int, seed: int) -> sparse.csr_matrix:
    """Return a one-draw association matrix for one customer from their label posteriors."""
    priors = state.label_priors
    n_labels = priors.height
    rows = state.weights.filter(pl.col("customer") == customer)
    base = (
        state.baseline_rate[customer]
        if customer < state.n_customers
        else state.pooled_baseline_rate
    )
    prior_rate = np.clip(base * priors["population_lift"].to_numpy(), RATE_FLOOR, 1 - RATE_FLOOR)
    kappa = priors["kappa"].to_numpy()
    alpha = kappa * prior_rate
    beta = kappa * (1 - prior_rate)
    label_ids = rows["label_id"].to_numpy()
    alpha[label_ids] = rows["alpha"].to_numpy()
    beta[label_ids] = rows["beta"].to_numpy()
    mean, sd = logit_normal_moments(alpha, beta)
    draw = expit(mean + sd * np.random.default_rng(seed).standard_normal(n_labels))
    values = np.log(draw / prior_rate)
    matrix = sparse.lil_matrix((max(state.n_customers, customer + 1), n_labels))
    matrix[customer, :] = values
    return matrix.tocsr()
