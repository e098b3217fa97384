"""The scoring model's features (the trait-segment rate, message x frequency) and their effects."""

import numpy as np
import polars as pl
import pytest
from scipy import sparse

from memory.scoring import compute_memory
from memory.scoring.frames import EngineConfig
from memory.scoring.model import (
    ALL_FEATURES,
    MemoryState,
    calibrated_p,
    candidate_features,
    fit_scoring_model,
    message_frequency,
)
from memory.scoring.population import Population
from memory.scoring.regression import logit
from memory.scoring.synthetic import synthetic_workspace
from memory.selectors import scoring_model_rows

WINDOW = 72.0


def state(frequency_rate_h, segment_rate_h, message_rate) -> MemoryState:
    """Return a state of two customers and two unlabelled messages with these rates."""
    customers, messages = len(frequency_rate_h), len(message_rate)
    return MemoryState(
        horizon=100.0,
        config=EngineConfig(attribution_window_h=WINDOW),
        baseline_rate=np.full(customers, 0.5),
        frequency_rate_h=np.asarray(frequency_rate_h, dtype=np.float64),
        segment_rate_h=np.asarray(segment_rate_h, dtype=np.float64),
        hours_since_goal=np.full(customers, 10.0),
        message_rate=np.asarray(message_rate, dtype=np.float64),
        association=sparse.csr_matrix((customers, 1)),
        message_labels=sparse.csr_matrix((messages, 1)),
        exposure=sparse.csr_matrix((customers, messages)),
        similarity=sparse.identity(messages, format="csr"),
        primed=np.zeros(customers),
        weights=pl.DataFrame(),
        label_priors=pl.DataFrame(),
        pooled_baseline_rate=0.5,
        pooled_frequency_rate_h=1 / WINDOW,
        pooled_rate_h=1 / WINDOW,
    )


def test_it_multiplies_the_centred_message_and_frequency():
    # (2 - 0.5) * (-1 - 1) and (0.5 - 0.5) * anything.
    product = message_frequency(np.array([2.0, 0.5]), np.array([-1.0, 3.0]), 0.5, 1.0)
    assert product.tolist() == [-3.0, 0.0]


def test_it_centres_the_interaction_on_the_population():
    # Customer 0 buys e times a window, customer 1 once (the population mean frequency is once
    # a window); message 0 has the mean message rate 0.5, message 1 a rate of 0.8.
    features = candidate_features(
        state([np.e / WINDOW, 1 / WINDOW], [2 / WINDOW, 1 / WINDOW], [0.2, 0.8]),
        np.array([0, 0, 1, 1]),
        np.array([0, 1, 0, 1]),
    )
    assert features["frequency"] == pytest.approx([1.0, 1.0, 0.0, 0.0])
    message = logit(np.array([0.2, 0.8, 0.2, 0.8]))
    assert features["message"] == pytest.approx(message)
    # ln(e) = 1 above the mean frequency: the message's logit, centred on logit(0.5) = 0.
    assert features["message_frequency"] == pytest.approx([message[0], message[1], 0.0, 0.0])


def test_it_gives_the_segment_rate_relative_to_the_population_rate():
    features = candidate_features(
        state([1 / WINDOW, 1 / WINDOW], [2 / WINDOW, 0.5 / WINDOW], [0.5]),
        np.array([0, 1, 2]),
        np.array([0, 0, 0]),
    )
    # ln(segment rate / population rate); an unknown customer (2) is at the population's rate.
    assert features["segment"] == pytest.approx([np.log(2.0), np.log(0.5), 0.0])
    assert features["message_frequency"] == pytest.approx([0.0, 0.0, 0.0])


def test_it_uses_the_trait_segment_only_when_traits_vary():
    workspace = synthetic_workspace(200, 16_000, seed=4)
    traits = pl.DataFrame(
        {
            "customer": np.arange(200, dtype=np.int64),
            "tier": ["gold" if c % 4 == 0 else "basic" for c in range(200)],
        }
    )
    args = (workspace.events, workspace.messages, workspace.message_labels, workspace.config)
    with_traits = compute_memory(*args, as_of=1_500.0, traits=traits)
    without = compute_memory(*args, as_of=1_500.0)
    assert "segment" in with_traits.model.features
    # Without traits everyone's segment rate is the pooled rate: a constant the fit drops.
    assert "segment" not in without.model.features
    assert set(without.model.features) == set(ALL_FEATURES) - {"segment"}


def test_it_states_each_features_effect_per_standard_deviation():
    rng = np.random.default_rng(7)
    rows = 20_000
    wide, narrow = rng.normal(0, 2.0, rows), rng.normal(0, 0.5, rows)
    planted = 0.8 * wide - 1.0 * narrow  # effects per SD: +1.6 and -0.5

    def outcomes(logits):
        return rng.random(logits.size) < 1 / (1 + np.exp(-logits))

    features = {"wide": wide, "narrow": narrow}
    model = fit_scoring_model(
        features, outcomes(planted), features, outcomes(planted), ("wide", "narrow"), l2=1e-6
    )

    assert model.feature_scales == pytest.approx((wide.std(), narrow.std()))
    effects = model.effects_per_sd()
    slope = model.calibration[1]
    assert effects["wide"] == pytest.approx(slope * model.coefficients[1] * wide.std())
    assert effects["wide"] == pytest.approx(1.6, abs=0.15)
    assert effects["narrow"] == pytest.approx(-0.5, abs=0.1)


def test_it_reads_a_model_stored_before_the_scales_were_kept():
    workspace = synthetic_workspace(200, 16_000, seed=4)
    args = (workspace.events, workspace.messages, workspace.message_labels, workspace.config)
    population = compute_memory(*args, as_of=1_500.0).population
    blob = population.to_bytes()
    # The header renamed in place (same length): as if the key had never been written.
    old = blob.replace(b'"feature_scales": [', b'"unknown_scales": [', 1)
    restored = Population.from_bytes(old)
    assert restored.model.feature_scales == ()
    assert restored.model.effects_per_sd() == {}
    assert scoring_model_rows(restored.summary()) == []
    rows = scoring_model_rows(population.summary())
    assert [row["feature"] for row in rows] == sorted(
        population.model.features, key=lambda name: -abs(population.model.effects_per_sd()[name])
    )
    assert all(row["odds_per_sd"] == pytest.approx(np.exp(row["effect_per_sd"])) for row in rows)
    assert all(row["meaning"] for row in rows)


def test_it_reports_the_goal_rate_and_the_models_level_per_replayed_slice():
    workspace = synthetic_workspace(200, 16_000, seed=4)
    args = (workspace.events, workspace.messages, workspace.message_labels, workspace.config)
    result = compute_memory(*args, as_of=1_500.0)
    levels = result.model.replay_levels
    step = workspace.config.training_step_h

    assert len(levels) == len(result.replay) >= 3
    cuts = [level["cut_h"] for level in levels]
    assert cuts == sorted(cuts, reverse=True)  # newest first, as the replay
    assert all((1_500.0 - cut) % step == 0 for cut in cuts)
    for level, (features, outcomes) in zip(levels, result.replay, strict=True):
        assert level["sends"] == outcomes.size
        assert level["goal_rate"] == pytest.approx(outcomes.mean())
        assert level["mean_p"] == pytest.approx(calibrated_p(result.model, features).mean())
    assert sum(level["sends"] for level in levels) == result.model.training_rows
    # Calibrated on the newest slice: the model's level matches that slice's goal rate.
    assert levels[0]["mean_p"] == pytest.approx(levels[0]["goal_rate"], abs=0.01)
    assert result.population.summary()["replay_levels"] == levels
    restored = Population.from_bytes(result.population.to_bytes())
    assert restored.model.replay_levels == levels
