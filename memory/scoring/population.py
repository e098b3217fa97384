"""Population statistics: everything a customer's memory needs that depends on more than one.

Fitted once per recompute on a sample of customers (all of them in a small workspace): the label
catalogue and message similarity (from the catalogue alone), the baseline prior (pooled rate,
trait bins and regression, Gamma shapes, free-time ratio), the label priors, the message rates,
the priming table, the scoring model (replayed at earlier cut-offs) and the habituation curve.
Every shard then computes its customers from their own events and this, on any worker.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np
import polars as pl
from scipy import sparse

from memory.scoring import associative, habituation, priming
from memory.scoring.baseline import BaselinePrior, apply_baseline, fit_baseline_prior
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

MAGIC = b"PRIMER-POPULATION/1\n"
Replay = list[tuple[dict[str, np.ndarray], np.ndarray]]


@dataclass
class Population:
    """Hold what every shard shares: priors, message rates, priming table and model."""

    config: EngineConfig
    horizon: float
    messages: pl.DataFrame  # message, key
    catalogue: pl.DataFrame  # label_id, label_set, label
    incidence: sparse.csr_matrix  # messages x labels, 0/1
    similarity: sparse.csr_matrix  # messages x messages
    baseline: BaselinePrior
    label_priors: pl.DataFrame
    message_rate: np.ndarray
    priming: pl.DataFrame
    pooled_baseline_rate: float
    pooled_frequency_rate_h: float
    model: ScoringModel | None = None
    habituation_curve: pl.DataFrame = field(default_factory=pl.DataFrame)
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_messages(self) -> int:
        """Return the number of dense message indices the population knows."""
        return self.incidence.shape[0]

    @cached_property
    def label_matrix(self) -> sparse.csr_matrix:
        """Return messages x labels with each message's row summing to 1 (0 if unlabelled)."""
        counts = np.asarray(self.incidence.sum(axis=1)).ravel()
        scale = sparse.diags(np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0))
        return sparse.csr_matrix(scale @ self.incidence)

    def to_bytes(self) -> bytes:
        """Serialise as a JSON header, Arrow IPC frames and raw little-endian arrays."""
        frames = {
            "messages": self.messages,
            "catalogue": self.catalogue,
            "label_priors": self.label_priors,
            "priming": self.priming,
            "habituation_curve": self.habituation_curve,
        }
        model = self.model or ScoringModel(features=(), coefficients=np.zeros(1))
        arrays = {
            "message_rate": self.message_rate,
            "model_coefficients": model.coefficients,
            **_sparse_arrays("incidence", self.incidence),
            **_sparse_arrays("similarity", self.similarity),
        }
        sections = []
        for frame in frames.values():
            buffer = io.BytesIO()
            frame.write_ipc(buffer, compression="uncompressed")
            sections.append(buffer.getvalue())
        for array in arrays.values():
            sections.append(
                np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
            )
        header = {
            "config": dataclasses.asdict(self.config),
            "horizon": self.horizon,
            "baseline": self.baseline.to_dict(),
            "pooled_baseline_rate": self.pooled_baseline_rate,
            "pooled_frequency_rate_h": self.pooled_frequency_rate_h,
            "model": None
            if self.model is None
            else {
                "features": list(model.features),
                "calibration": list(model.calibration),
                "training_rows": model.training_rows,
                "calibration_rows": model.calibration_rows,
                "extra": model.extra,
                "feature_scales": list(model.feature_scales),
                "replay_levels": model.replay_levels,
            },
            "stats": self.stats,
            "frames": list(frames),
            # Lists, not dicts: sort_keys must not reorder the sections they describe.
            "arrays": [
                [name, array.dtype.newbyteorder("<").str, list(array.shape)]
                for name, array in arrays.items()
            ],
            "shapes": {"incidence": list(self.incidence.shape)},
        }
        encoded = json.dumps(header, sort_keys=True).encode()
        out = io.BytesIO()
        out.write(MAGIC)
        for section in (encoded, *sections):
            out.write(len(section).to_bytes(8, "little"))
            out.write(section)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Population:
        """Read a population written by ``to_bytes``."""
        view = memoryview(blob)
        if bytes(view[: len(MAGIC)]) != MAGIC:
            raise ValueError("not a serialised Population (wrong magic)")
        at, sections = len(MAGIC), []
        while at < len(view):
            size = int.from_bytes(view[at : at + 8], "little")
            sections.append(bytes(view[at + 8 : at + 8 + size]))
            at += 8 + size
        header = json.loads(sections[0])
        frames = {
            name: pl.read_ipc(io.BytesIO(section))
            for name, section in zip(header["frames"], sections[1:], strict=False)
        }
        arrays = {
            name: np.frombuffer(section, dtype=np.dtype(dtype)).reshape(shape).copy()
            for (name, dtype, shape), section in zip(
                header["arrays"], sections[1 + len(frames) :], strict=True
            )
        }
        model_header = header["model"]
        model = None
        if model_header is not None:
            model = ScoringModel(
                features=tuple(model_header["features"]),
                coefficients=arrays["model_coefficients"],
                calibration=tuple(model_header["calibration"]),
                training_rows=model_header["training_rows"],
                calibration_rows=model_header["calibration_rows"],
                extra=model_header["extra"],
                # Populations stored before the scales were kept have none.
                feature_scales=tuple(model_header.get("feature_scales", ())),
                replay_levels=model_header.get("replay_levels", []),
            )
        n_messages = header["shapes"]["incidence"][0]
        return cls(
            config=EngineConfig(**header["config"]),
            horizon=header["horizon"],
            messages=frames["messages"],
            catalogue=frames["catalogue"],
            incidence=_sparse_from(arrays, "incidence", tuple(header["shapes"]["incidence"])),
            similarity=_sparse_from(arrays, "similarity", (n_messages, n_messages)),
            baseline=BaselinePrior.from_dict(header["baseline"]),
            label_priors=frames["label_priors"],
            message_rate=arrays["message_rate"],
            priming=frames["priming"],
            pooled_baseline_rate=header["pooled_baseline_rate"],
            pooled_frequency_rate_h=header["pooled_frequency_rate_h"],
            model=model,
            habituation_curve=frames["habituation_curve"],
            stats=header["stats"],
        )

    def summary(self) -> dict:
        """Return a JSON-safe digest for dashboards: model, curve, priors, priming and counts."""
        model = self.model
        model_summary = None
        if model is not None:
            model_summary = {
                "features": list(model.features),
                "coefficients": dict(
                    zip(("intercept", *model.features), model.coefficients.tolist(), strict=True)
                ),
                "calibration": {"a": model.calibration[0], "b": model.calibration[1]},
                "effects_per_sd": model.effects_per_sd(),
                "training_rows": model.training_rows,
                "calibration_rows": model.calibration_rows,
            }
        summary = {
            "horizon": self.horizon,
            "model": model_summary,
            "habituation_curve": self.habituation_curve.to_dicts(),
            "habituation": {
                "lambda_goal": self.stats.get("habituation_lambda_goal"),
                "lambda_open": self.stats.get("habituation_lambda_open"),
            },
            "label_priors": self.label_priors.drop("label_id").to_dicts(),
            "priming": self.priming.to_dicts(),
            "baseline": {
                "pooled_rate_h": self.baseline.pooled_rate_h,
                "shape": self.baseline.all_shape,
                "free_shape": self.baseline.free_shape,
                "free_ratio": self.baseline.free_ratio,
                "trait_segments": bool(self.baseline.traits),
            },
            "counts": {
                key: self.stats.get(key)
                for key in ("customers", "events", "sends", "resolved_sends")
            }
            | {"messages": self.n_messages, "labels": self.catalogue.height},
            "goal_rate_after_send": self.stats.get("goal_rate_after_send"),
            # The weeks the model learned from (an incremental run keeps the model, and these).
            "replay_levels": model.replay_levels if model is not None else [],
        }
        return _json_safe(summary)


def _sparse_arrays(name: str, matrix: sparse.csr_matrix) -> dict[str, np.ndarray]:
    """Return the CSR arrays of a matrix under prefixed names."""
    matrix = sparse.csr_matrix(matrix)
    matrix.sort_indices()
    return {
        f"{name}_indptr": matrix.indptr.astype(np.int64),
        f"{name}_indices": matrix.indices.astype(np.int64),
        f"{name}_data": matrix.data.astype(np.float64),
    }


def _sparse_from(arrays: dict[str, np.ndarray], name: str, shape: tuple) -> sparse.csr_matrix:
    """Rebuild a CSR matrix from ``_sparse_arrays``."""
    return sparse.csr_matrix(
        (arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]),
        shape=shape,
    )


def _json_safe(value):
    """Replace NaN and infinities by None, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


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
) -> tuple[Population, Observed, pl.DataFrame]:
    """Fit the population statistics at one cut-off; return them, the observations, baselines."""
    n_customers = customer_count(events, traits)
    first = float(events["t"].min()) if events.height else None
    observed = observe(events, config, horizon, n_customers, catalogue.incidence, first)
    baseline = fit_baseline_prior(observed.counts, config, traits, first)
    baselines = apply_baseline(observed.counts, baseline, config, traits)
    baseline_rate = baselines["baseline_rate"].to_numpy()
    frequency = baselines["frequency_rate_h"].to_numpy()
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
    )
    return population, observed, baselines


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
) -> list[Callable[[], tuple[dict[str, np.ndarray], np.ndarray] | None]]:
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

    def replay_at(cut: float) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
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
        return features, rows["goal"].to_numpy().astype(np.float64)

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
    cut_slices: list[tuple[float, tuple[dict[str, np.ndarray], np.ndarray]]],
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

    def finish(self) -> tuple[Population, Replay]:
        """Take every step left and fit the model (unless one was kept); return the population
        and its replayed training slices, newest cut-off first."""
        while self.step():
            pass
        curve, curve_stats = self.results[0]
        population, observed = self.population, self.observed
        step_h = population.config.training_step_h
        # Step k replayed the cut-off k steps before the horizon; empty slices gave None.
        cut_slices = [
            (population.horizon - k * step_h, self.results[k])
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
        return population, replay


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


def fit_population_with_replay(**inputs) -> tuple[Population, Replay, Observed]:
    """Return the population, its replayed training slices and the sample's observations.

    ``inputs``: the keyword arguments of ``fit_statistics``; every step is taken here.
    """
    fit = fit_statistics(**inputs)
    population, replay = fit.finish()
    return population, replay, fit.observed


def fit_population(**inputs) -> Population:
    """Fit the population on a sample's events strictly before the horizon, every step taken.

    ``inputs``: the keyword arguments of ``fit_statistics``. With `model` (an incremental run
    passes the last run's), the statistics are refreshed but the scoring model's coefficients
    are kept: replaying history to refit them is most of the cost, and they move slowly; the
    next full run refits them.
    """
    population, _ = fit_statistics(**inputs).finish()
    return population
