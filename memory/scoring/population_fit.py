"""Fit the population on a sample of customers: statistics first, then the slower steps.

The statistics (catalogue, baseline prior, label priors, message rates, priming table) are all
a shard needs; the habituation curve, the replayed slices and the scoring model follow, step by
step, so a caller can take them while it waits on something else (``PopulationFit``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import numpy as np
import polars as pl
from scipy import sparse

from memory.scoring import associative, habituation, priming
from memory.scoring.baseline import apply_baseline, fit_baseline_prior
from memory.scoring.customers import (
    Observed,
    customer_count,
    customer_pass,
    observe,
    prepare_events,
)
from memory.scoring.frames import EngineConfig, normalise_labels, normalise_messages
from memory.scoring.model import (
    ALL_FEATURES,
    ScoringModel,
    calibrated_p,
    candidate_features,
    fit_scoring_model,
)
from memory.scoring.population import Population


class ReplaySlice(NamedTuple):
    """The features of the sends after one replayed cut-off, and whether each reached the goal."""

    features: dict[str, np.ndarray]
    outcomes: np.ndarray


Replay = list[ReplaySlice]


class ReplayedCut(NamedTuple):
    """A replayed cut-off (hours) and the slice of sends after it."""

    cut: float
    replayed: ReplaySlice


class Statistics(NamedTuple):
    """The population statistics at one cut-off, the observations and baselines behind them."""

    population: Population
    observed: Observed
    baselines: pl.DataFrame


class FittedPopulation(NamedTuple):
    """A whole population and its replayed training slices, newest cut-off first."""

    population: Population
    replay: Replay


class PopulationWithReplay(NamedTuple):
    """A whole population, its replayed training slices and the sample's observations."""

    population: Population
    replay: Replay
    observed: Observed


@dataclass
class _Catalogue:
    messages: pl.DataFrame
    catalogue: pl.DataFrame
    incidence: sparse.csr_matrix
    similarity: sparse.csr_matrix


def _catalogue(
    events: pl.DataFrame,
    messages: pl.DataFrame,
    message_labels: pl.DataFrame,
    config: EngineConfig,
    similarity_fn: habituation.SimilarityFn | None,
) -> _Catalogue:
    """Return the message and label catalogue with the message similarity."""
    messages = normalise_messages(messages)
    labels = normalise_labels(message_labels)
    sent = events["message"].drop_nulls()
    n_messages = int(
        max(
            messages["message"].max() if messages.height else -1,
            sent.max() if sent.len() else -1,
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
    return _Catalogue(
        messages=messages.select("message", "key"),
        catalogue=catalogue,
        incidence=associative.message_label_incidence(labels, catalogue, n_messages),
        similarity=habituation.nearest_similarity(raw_similarity, config.similarity_neighbours),
    )


def _message_rates(resolved: pl.DataFrame, n_messages: int, config: EngineConfig) -> np.ndarray:
    """Return each message's response rate shrunk toward the pooled rate of all sends."""
    pooled = float(resolved["goal"].mean()) if resolved.height else 0.5
    goal = resolved["goal"].cast(pl.Float64).to_numpy()
    message = resolved["message"].to_numpy().astype(np.int64)
    n = np.bincount(message, minlength=n_messages).astype(np.float64)
    x = np.bincount(message, weights=goal, minlength=n_messages)
    k = config.message_rate_prior_sends
    return (x + k * pooled) / (n + k)


def _statistics(
    events: pl.DataFrame,
    catalogue: _Catalogue,
    config: EngineConfig,
    horizon: float,
    traits: pl.DataFrame | None,
) -> Statistics:
    """Fit the population statistics at one cut-off; return them, the observations, baselines."""
    n_customers = customer_count(events, traits)
    first = float(events["t"].min()) if events.height else None
    observed = observe(events, config, horizon, n_customers, catalogue.incidence, first)
    baseline = fit_baseline_prior(observed.counts, config, traits, first)
    baselines = apply_baseline(observed.counts, baseline, config, traits)
    baseline_rate = baselines["baseline_rate"].to_numpy()
    frequency = baselines["frequency_rate_h"].to_numpy()
    sends, opens = associative.open_totals(observed.resolved, n_customers)
    opened = associative.open_prior(sends, opens, config)
    population = Population(
        config=config,
        horizon=horizon,
        messages=catalogue.messages,
        catalogue=catalogue.catalogue,
        incidence=catalogue.incidence,
        similarity=catalogue.similarity,
        baseline=baseline,
        label_priors=associative.label_priors(
            observed.label_counts, catalogue.catalogue, baseline_rate, config
        ),
        message_rate=_message_rates(observed.resolved, catalogue.incidence.shape[0], config),
        priming=priming.priming_table(events, observed.actions, config, horizon),
        pooled_baseline_rate=float(np.mean(baseline_rate)) if n_customers else 0.5,
        pooled_frequency_rate_h=float(np.mean(frequency)) if n_customers else 1e-3,
        open_prior=opened,
        engagement_priors=(
            associative.label_priors(
                associative.engagement_counts(observed.label_counts),
                catalogue.catalogue,
                associative.open_baseline(sends, opens, opened),
                config,
            )
            if opened[1] > 0
            else pl.DataFrame()
        ),
    )
    return Statistics(population, observed, baselines)


def _training_customers(n_customers: int, config: EngineConfig) -> np.ndarray | None:
    """Return a seeded subset of customers for replayed fitting, or None to use everyone."""
    if n_customers <= config.max_training_customers:
        return None
    rng = np.random.default_rng(config.seed)
    return np.sort(rng.choice(n_customers, config.max_training_customers, replace=False))


def _reindex(frame: pl.DataFrame | None, chosen: np.ndarray) -> pl.DataFrame | None:
    """Keep the chosen customers' rows, renumbered 0..len(chosen)-1 in order."""
    if frame is None:
        return None
    kept = frame.filter(pl.col("customer").is_in(pl.Series(chosen).implode()))
    dense = np.searchsorted(chosen, kept["customer"].to_numpy())
    return kept.with_columns(pl.Series("customer", dense, dtype=pl.Int64))


def _replay_cuts(
    events: pl.DataFrame,
    catalogue: _Catalogue,
    config: EngineConfig,
    outcomes: pl.DataFrame,
    horizon: float,
    traits: pl.DataFrame | None,
    n_customers: int,
) -> list[Callable[[], ReplaySlice | None]]:
    """Return one step per replayed cut-off, newest first: each returns (features, outcomes)
    of the sends after its cut-off, or None when it has none.

    At each cut-off the population statistics are refitted from the replay sample's events
    before it, then the sample's customers get their memory at the cut-off, as a shard would.
    The steps are independent, so a run may take them in any order and at any time.
    """
    chosen = _training_customers(n_customers, config)
    labelled = outcomes.filter(
        pl.col("resolved")
        & pl.col("message").is_not_null()
        & (pl.col("message") < catalogue.incidence.shape[0])
    )
    if chosen is not None:
        events, labelled, traits = (_reindex(f, chosen) for f in (events, labelled, traits))
    start = float(events["t"].min()) if events.height else horizon

    def replay_at(cut: float) -> ReplaySlice | None:
        rows = labelled.filter((pl.col("t") >= cut) & (pl.col("t") < cut + config.training_step_h))
        if rows.height == 0:
            return None
        before = events.filter(pl.col("t") < cut)
        fitted, observed, _ = _statistics(before, catalogue, config, cut, traits)
        passed = customer_pass(
            observed, fitted, cut, traits, with_propensity=False, with_signals=False
        )
        features = candidate_features(
            passed.state, rows["customer"].to_numpy(), rows["message"].to_numpy()
        )
        return ReplaySlice(features, rows["goal"].to_numpy().astype(np.float64))

    cuts = []
    for j in range(config.training_snapshots):
        cut = horizon - (j + 1) * config.training_step_h
        if cut <= start:
            break
        cuts.append(partial(replay_at, cut))
    return cuts


def fit_model(slices: Replay, features: tuple[str, ...], config: EngineConfig) -> ScoringModel:
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


def replay_levels(
    cut_slices: list[ReplayedCut],
    model: ScoringModel,
    step_h: float,
) -> list[dict[str, float]]:
    """Return, per replayed slice (newest cut-off first: the sends in [cut, cut + step_h)), its
    sends, the goal rate after them and the fitted model's mean p: how the goal rate moved over
    the weeks the model learned from, and how well its level follows (the newest slice is the
    one it is calibrated on)."""
    levels = []
    for cut, (features, outcomes) in cut_slices:
        levels.append(
            {
                "cut_h": float(cut),
                "step_h": float(step_h),
                "sends": int(outcomes.size),
                "goal_rate": float(outcomes.mean()),
                "mean_p": float(calibrated_p(model, features).mean()),
            }
        )
    return levels


def _curve(
    observed: Observed,
    baseline_rate: np.ndarray,
    similarity: sparse.csr_matrix,
    config: EngineConfig,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Fit the habituation curve on a seeded sample of the customers' sends."""
    sends = observed.sends
    sample = habituation.curve_sample(observed.resolved, config.max_curve_sends, config.seed)
    sampled = sends.filter(pl.col("customer").is_in(sample["customer"].unique().implode()))
    loads = habituation.send_loads(sampled, similarity, config.habituation_tau_h)
    resolved_mask = sampled["resolved"].to_numpy()
    return habituation.habituation_curve(
        sampled.filter(pl.col("resolved")),
        loads[resolved_mask] if resolved_mask.size else np.empty(0),
        baseline_rate,
        config,
    )


@dataclass
class PopulationFit:
    """A population whose statistics are fitted, and the steps left to complete it.

    Shards need only the statistics. The habituation curve and the replayed slices behind the
    scoring model are independent steps that a run may take whenever a core would otherwise
    wait (for a read, for index builds); ``finish`` takes any left and fits the model. The
    result does not depend on when each step ran.
    """

    population: Population
    observed: Observed
    events: int  # in the sample, before the horizon
    kept_model: ScoringModel | None
    features: tuple[str, ...]
    # Step 0 fits the habituation curve; step k >= 1 replays the k-th newest cut-off.
    steps: list[Callable[[], object]]
    seconds: float = 0.0  # spent fitting so far: the statistics, then each step
    results: dict[int, object] = field(default_factory=dict)
    finished: FittedPopulation | None = None  # what finish returned: it fits the model once

    @property
    def steps_left(self) -> int:
        return len(self.steps) - len(self.results)

    def step(self) -> bool:
        """Take the next step left; return whether any remain after it."""
        index = len(self.results)
        if index < len(self.steps):
            started = time.perf_counter()
            self.results[index] = self.steps[index]()
            self.seconds += time.perf_counter() - started
        return self.steps_left > 0

    def finish(self) -> FittedPopulation:
        """Take every step left and fit the model (unless one was kept); return the population
        and its replayed training slices, newest cut-off first."""
        if self.finished is not None:
            return self.finished
        while self.step():
            pass
        curve, curve_stats = self.results[0]
        population, observed = self.population, self.observed
        step_h = population.config.training_step_h
        # Step k replayed the cut-off k steps before the horizon; empty slices gave None.
        cut_slices = [
            ReplayedCut(population.horizon - k * step_h, self.results[k])
            for k in range(1, len(self.steps))
            if self.results[k]
        ]
        replay = [replayed for _, replayed in cut_slices]
        if self.kept_model is not None:
            population.model = self.kept_model
        else:
            population.model = fit_model(replay, self.features, population.config)
            population.model.replay_levels = replay_levels(cut_slices, population.model, step_h)
        population.habituation_curve = curve
        resolved = observed.resolved
        population.stats = {
            "horizon": population.horizon,
            "customers": float(observed.n_customers),
            "events": float(self.events),
            "sends": float(observed.outcomes.height),
            "resolved_sends": float(resolved.height),
            "goal_rate_after_send": (
                float(resolved["goal"].mean()) if resolved.height else float("nan")
            ),
            **curve_stats,
        }
        self.finished = FittedPopulation(population, replay)
        return self.finished


def fit_statistics(
    *,
    events: pl.DataFrame,
    messages: pl.DataFrame,
    message_labels: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
    traits: pl.DataFrame | None = None,
    similarity_fn: habituation.SimilarityFn | None = None,
    features: tuple[str, ...] = ALL_FEATURES,
    model: ScoringModel | None = None,
) -> PopulationFit:
    """Fit the statistics shards need from a sample's events strictly before the horizon;
    return them with the steps left (habituation curve, replayed slices, model).

    `model`: keep this scoring model instead of replaying history to fit one (no slices).
    """
    started = time.perf_counter()
    before = prepare_events(events, horizon)
    catalogue = _catalogue(before, messages, message_labels, config, similarity_fn)
    population, observed, baselines = _statistics(before, catalogue, config, horizon, traits)
    baseline_rate = baselines["baseline_rate"].to_numpy()
    cuts = (
        []
        if model is not None
        else _replay_cuts(
            before, catalogue, config, observed.outcomes, horizon, traits, observed.n_customers
        )
    )
    return PopulationFit(
        population=population,
        observed=observed,
        events=before.height,
        kept_model=model,
        features=features,
        steps=[partial(_curve, observed, baseline_rate, catalogue.similarity, config), *cuts],
        seconds=time.perf_counter() - started,
    )


def fit_population_with_replay(**inputs) -> PopulationWithReplay:
    """Return the population, its replayed training slices and the sample's observations.

    ``inputs``: the keyword arguments of ``fit_statistics``; every step is taken here.
    """
    fit = fit_statistics(**inputs)
    population, replay = fit.finish()
    return PopulationWithReplay(population, replay, fit.observed)


def fit_population(**inputs) -> Population:
    """Fit the population on a sample's events strictly before the horizon, every step taken.

    ``inputs``: the keyword arguments of ``fit_statistics``. With `model` (an incremental run
    passes the last run's), the statistics are refreshed but the scoring model's coefficients
    are kept: replaying history to refit them is most of the cost, and they move slowly; the
    next full run refits them.
    """
    return fit_statistics(**inputs).finish().population
