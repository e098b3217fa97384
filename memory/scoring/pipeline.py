"""One entry point: events in, the three memories and a fitted scoring model out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import sparse

from memory.scoring import associative, habituation, priming
from memory.scoring.baseline import customer_baselines
from memory.scoring.frames import (
    EngineConfig,
    normalise_events,
    normalise_labels,
    normalise_messages,
)
from memory.scoring.model import (
    ALL_FEATURES,
    MemoryState,
    ScoringModel,
    candidate_features,
    fit_scoring_model,
    predict,
    thompson_association,
)
from memory.scoring.outcomes import events_before, send_outcomes

WEIGHT_COLUMNS = [
    "customer",
    "label_set",
    "label",
    "alpha",
    "beta",
    "exposures",
    "conversions",
    "rate",
    "weight",
    "weight_low",
    "weight_high",
    "evidence",
    "lift",
]


@dataclass
class MemoryResult:
    """Hold every derived frame of one recompute, the fitted model and the state to score with."""

    as_of: float
    weights: pl.DataFrame
    label_priors: pl.DataFrame
    baselines: pl.DataFrame
    habituation: pl.DataFrame
    habituation_curve: pl.DataFrame
    priming: pl.DataFrame
    customer_state: pl.DataFrame
    model: ScoringModel
    state: MemoryState
    messages: pl.DataFrame
    stats: dict[str, float] = field(default_factory=dict)
    # (features, outcomes) of the replayed slices, newest first: refit ablations without replaying.
    replay: list[tuple[dict[str, np.ndarray], np.ndarray]] = field(default_factory=list)


@dataclass
class _Inputs:
    events: pl.DataFrame
    messages: pl.DataFrame
    labels: pl.DataFrame
    catalogue: pl.DataFrame
    label_matrix: sparse.csr_matrix
    similarity: sparse.csr_matrix
    n_customers: int
    n_messages: int
    traits: pl.DataFrame | None


def _prepare(
    events: pl.DataFrame,
    messages: pl.DataFrame,
    message_labels: pl.DataFrame,
    config: EngineConfig,
    traits: pl.DataFrame | None,
    similarity_fn: habituation.SimilarityFn | None,
) -> _Inputs:
    events = normalise_events(events)
    messages = normalise_messages(messages)
    labels = normalise_labels(message_labels)
    n_messages = int(
        max(
            messages["message"].max() if messages.height else -1,
            events["message"].max() if events["message"].drop_nulls().len() else -1,
        )
        + 1
    )
    n_customers = int(
        max(
            events["customer"].max() if events.height else -1,
            traits["customer"].max() if traits is not None and traits.height else -1,
        )
        + 1
    )
    catalogue = associative.label_catalogue(labels)
    texts = (
        pl.DataFrame({"message": np.arange(n_messages, dtype=np.int64)})
        .join(messages.select("message", "text"), on="message", how="left")
        .sort("message")["text"]
        .fill_null("")
        .to_list()
    )
    raw_similarity = (similarity_fn or habituation.tfidf_similarity)(texts)
    similarity = habituation.nearest_similarity(raw_similarity, config.similarity_neighbours)
    label_matrix = associative.message_label_matrix(labels, catalogue, n_messages)
    counts = np.asarray(label_matrix.sum(axis=1)).ravel()
    normaliser = sparse.diags(np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0))
    return _Inputs(
        events=events,
        messages=messages,
        labels=labels,
        catalogue=catalogue,
        label_matrix=sparse.csr_matrix(normaliser @ label_matrix),
        similarity=similarity,
        n_customers=n_customers,
        n_messages=n_messages,
        traits=traits,
    )


def _state(
    inputs: _Inputs,
    config: EngineConfig,
    events: pl.DataFrame,
    horizon: float,
    *,
    with_propensity: bool = True,
) -> tuple[MemoryState, dict[str, pl.DataFrame]]:
    """Compute the memory state from events strictly before ``horizon``."""
    n_customers, n_messages = inputs.n_customers, inputs.n_messages
    outcomes = send_outcomes(events, config, horizon)
    sends = outcomes.filter(pl.col("message").is_not_null())
    resolved = sends.filter(pl.col("resolved"))
    baselines = customer_baselines(events, outcomes, config, horizon, n_customers, inputs.traits)
    baseline_rate = baselines["baseline_rate"].to_numpy()
    counts = associative.customer_label_counts(
        resolved, inputs.labels, inputs.catalogue, config, horizon
    )
    priors = associative.label_priors(counts, inputs.catalogue, baseline_rate, config)
    weights = associative.label_posteriors(
        counts, priors, baseline_rate, config, with_propensity=with_propensity
    )
    association = sparse.csr_matrix(
        (
            weights["association"].to_numpy(),
            (weights["customer"].to_numpy(), weights["label_id"].to_numpy()),
        ),
        shape=(n_customers, inputs.catalogue.height),
    )
    message_rate = _message_rates(resolved, n_messages, config)
    exposure = habituation.exposure_matrix(
        sends, n_customers, n_messages, config.habituation_tau_h, horizon
    )
    actions = priming.action_instances(events, config)
    priming_table = priming.priming_table(events, actions, config, horizon)
    primed = priming.primed_scores(actions, priming_table, config, horizon, n_customers)
    state = MemoryState(
        horizon=horizon,
        config=config,
        baseline_rate=baseline_rate,
        frequency_rate_h=baselines["frequency_rate_h"].to_numpy(),
        segment_rate_h=baselines["prior_rate_h"].to_numpy(),
        hours_since_goal=baselines["hours_since_goal"].fill_null(np.nan).to_numpy(),
        message_rate=message_rate,
        association=association,
        message_labels=inputs.label_matrix,
        exposure=exposure,
        similarity=inputs.similarity,
        primed=primed,
        weights=weights,
        label_priors=priors,
    )
    frames = {
        "outcomes": outcomes,
        "baselines": baselines,
        "priming": priming_table,
    }
    return state, frames


def _message_rates(resolved: pl.DataFrame, n_messages: int, config: EngineConfig) -> np.ndarray:
    """Return each message's response rate shrunk toward the pooled rate of all sends."""
    pooled = float(resolved["goal"].mean()) if resolved.height else 0.5
    per_message = resolved.group_by("message").agg(
        pl.len().alias("n"), pl.col("goal").cast(pl.Float64).sum().alias("x")
    )
    n = np.zeros(n_messages)
    x = np.zeros(n_messages)
    n[per_message["message"].to_numpy()] = per_message["n"].to_numpy()
    x[per_message["message"].to_numpy()] = per_message["x"].to_numpy()
    k = config.message_rate_prior_sends
    return (x + k * pooled) / (n + k)


def _training_customers(n_customers: int, config: EngineConfig) -> np.ndarray | None:
    """Return a seeded subset of customers for replayed fitting, or None to use everyone."""
    if n_customers <= config.max_training_customers:
        return None
    rng = np.random.default_rng(config.seed)
    return np.sort(rng.choice(n_customers, config.max_training_customers, replace=False))


def _replay_slices(
    inputs: _Inputs,
    config: EngineConfig,
    outcomes: pl.DataFrame,
    as_of: float,
) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Return (features, outcomes) of sends after each replayed cut-off, newest cut-off first."""
    chosen = _training_customers(inputs.n_customers, config)
    events = inputs.events
    labelled = outcomes.filter(pl.col("resolved") & pl.col("message").is_not_null())
    if chosen is not None:
        events = events.filter(pl.col("customer").is_in(chosen))
        labelled = labelled.filter(pl.col("customer").is_in(chosen))
    start = float(events["t"].min()) if events.height else as_of
    slices = []
    for j in range(config.training_snapshots):
        cut = as_of - (j + 1) * config.training_step_h
        if cut <= start:
            break
        rows = labelled.filter((pl.col("t") >= cut) & (pl.col("t") < cut + config.training_step_h))
        if rows.height == 0:
            continue
        state, _ = _state(
            inputs, config, events.filter(pl.col("t") < cut), cut, with_propensity=False
        )
        features = candidate_features(
            state, rows["customer"].to_numpy(), rows["message"].to_numpy()
        )
        slices.append((features, rows["goal"].to_numpy().astype(np.float64)))
    return slices


def fit_model(
    slices: list[tuple[dict[str, np.ndarray], np.ndarray]],
    features: tuple[str, ...],
    config: EngineConfig,
) -> ScoringModel:
    """Fit coefficients on the older replayed slices and calibrate on the newest one."""
    if not slices:
        return fit_scoring_model({}, np.empty(0), None, None, features, config.model_l2)
    if len(slices) == 1 or not config.calibrate_on_held_out:
        fit_slices, calibration = slices, (slices[0] if len(slices) > 1 else None)
    else:
        fit_slices, calibration = slices[1:], slices[0]
    fit_features = {name: np.concatenate([s[0][name] for s in fit_slices]) for name in ALL_FEATURES}
    fit_outcomes = np.concatenate([s[1] for s in fit_slices])
    return fit_scoring_model(
        fit_features,
        fit_outcomes,
        calibration[0] if calibration else None,
        calibration[1] if calibration else None,
        features,
        config.model_l2,
    )


def compute_memory(
    events: pl.DataFrame,
    messages: pl.DataFrame,
    message_labels: pl.DataFrame,
    config: EngineConfig | None = None,
    as_of: float | None = None,
    *,
    traits: pl.DataFrame | None = None,
    similarity_fn: habituation.SimilarityFn | None = None,
    features: tuple[str, ...] = ALL_FEATURES,
) -> MemoryResult:
    """Compute weights, baselines, habituation, priming and the scoring model as of a time.

    Only events with t < as_of are used, and a send whose window ends at or after as_of has no
    outcome yet. Without as_of, every event is used and windows must end by the last event.
    """
    config = config or EngineConfig()
    inputs = _prepare(events, messages, message_labels, config, traits, similarity_fn)
    before, horizon = events_before(inputs.events, as_of)
    inputs.events = before
    state, frames = _state(inputs, config, before, horizon)
    outcomes = frames["outcomes"]
    sends = outcomes.filter(pl.col("message").is_not_null())
    loads = habituation.load_matrix(state.exposure, state.similarity)
    habituation_rows = habituation.habituation_frame(loads, sends)
    resolved = sends.filter(pl.col("resolved"))
    sample = habituation.curve_sample(resolved, config.max_curve_sends, config.seed)
    sample_loads = habituation.send_loads(
        sends.filter(pl.col("customer").is_in(sample["customer"].unique().implode())),
        state.similarity,
        config.habituation_tau_h,
    )
    sampled_all = sends.filter(pl.col("customer").is_in(sample["customer"].unique().implode()))
    resolved_mask = sampled_all["resolved"].to_numpy()
    curve, curve_stats = habituation.habituation_curve(
        sampled_all.filter(pl.col("resolved")),
        sample_loads[resolved_mask] if resolved_mask.size else np.empty(0),
        state.baseline_rate,
        config,
    )
    replay = _replay_slices(inputs, config, outcomes, horizon)
    model = fit_model(replay, features, config)
    baselines = frames["baselines"]
    send_counts = outcomes.group_by("customer").agg(pl.len().cast(pl.Int64).alias("sends"))
    customer_state = (
        baselines.select(
            "customer",
            "baseline_rate",
            "baseline_rate_h",
            "frequency_rate_h",
            "hours_since_goal",
            "goals",
        )
        .join(send_counts, on="customer", how="left")
        .with_columns(pl.col("sends").fill_null(0), pl.Series("primed_score", state.primed))
        .sort("customer")
    )
    stats = {
        "horizon": horizon,
        "events": float(before.height),
        "sends": float(outcomes.height),
        "resolved_sends": float(resolved.height),
        "goal_rate_after_send": float(resolved["goal"].mean()) if resolved.height else float("nan"),
        **curve_stats,
    }
    return MemoryResult(
        as_of=horizon,
        weights=state.weights.select(WEIGHT_COLUMNS),
        label_priors=state.label_priors,
        baselines=baselines,
        habituation=habituation_rows,
        habituation_curve=curve,
        priming=frames["priming"],
        customer_state=customer_state,
        model=model,
        state=state,
        messages=inputs.messages,
        stats=stats,
        replay=replay,
    )


def score_candidates(result: MemoryResult, candidates: pl.DataFrame) -> pl.DataFrame:
    """Return candidates (customer, message) with p_goal, the features and their contributions."""
    customers = candidates["customer"].cast(pl.Int64).to_numpy()
    messages = candidates["message"].cast(pl.Int64).to_numpy()
    features = candidate_features(result.state, customers, messages)
    p, contributions = predict(result.model, features)
    return pl.concat(
        [
            candidates.select("customer", "message"),
            pl.DataFrame({"p_goal": p, **{f"feature_{k}": v for k, v in features.items()}}),
            contributions,
        ],
        how="horizontal",
    )


def rank_messages(
    result: MemoryResult,
    customer: int,
    messages: list[int] | None = None,
    boosts: pl.DataFrame | None = None,
    *,
    explore: bool = False,
    seed: int = 0,
) -> pl.DataFrame:
    """Rank candidate messages for one customer, best first.

    score = logit(p_goal) + ln(boost_odds) * mean boost of the message's labels, where ``boosts``
    has columns label_set, label, boost in [-1, 1] (missing labels count 0). With ``explore``,
    the association comes from one Thompson draw of the customer's label posteriors (seeded).
    """
    state = result.state
    candidates = np.asarray(
        messages if messages is not None else result.messages["message"].to_list(), dtype=np.int64
    )
    customers = np.full(candidates.size, customer, dtype=np.int64)
    override = thompson_association(state, customer, seed) if explore else None
    features = candidate_features(state, customers, candidates, association_override=override)
    p, _ = predict(result.model, features)
    boost = np.zeros(candidates.size)
    if boosts is not None and boosts.height:
        catalogue = state.label_priors.select("label_id", "label_set", "label")
        per_label = np.zeros(catalogue.height)
        matched = catalogue.join(
            boosts.select("label_set", "label", pl.col("boost").clip(-1.0, 1.0)),
            on=["label_set", "label"],
        )
        per_label[matched["label_id"].to_numpy()] = matched["boost"].to_numpy()
        known = candidates < state.n_messages
        boost[known] = state.message_labels[candidates[known]] @ per_label
    logit_p = np.log(p / (1 - p))
    score = logit_p + np.log(state.config.boost_odds) * boost
    keys = result.messages.select("message", "key")
    return (
        pl.DataFrame({"message": candidates, "p_goal": p, "boost": boost, "score": score})
        .join(keys, on="message", how="left")
        .sort("score", "message", descending=[True, False])
        .with_row_index("rank", offset=1)
    )
