"""Sharded recompute: a population fitted once, customers computed from their own events."""

import json

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from memory.scoring import EngineConfig, compute_memory, rank_messages, score_candidates
from memory.scoring.frames import empty_events
from memory.scoring.sharded import (
    STATE_COLUMNS,
    Population,
    customer_memory,
    fit_population,
    fit_statistics,
    rank_with_population,
    score_with_population,
)
from memory.scoring.synthetic import PRIMING_ACTION, synthetic_workspace

AS_OF = 3_000.0
FRAMES = ("weights", "habituation", "state")


@pytest.fixture(scope="module")
def workspace():
    return synthetic_workspace(300, 30_000, seed=7)


@pytest.fixture(scope="module")
def traits(workspace):
    # Heavy buyers get their own tier, so the trait regression really moves the baseline prior.
    goals = (
        workspace.events.filter((pl.col("name") == "Order Completed") & (pl.col("t") < AS_OF))
        .group_by("customer")
        .len()
    )
    return (
        pl.DataFrame({"customer": np.arange(300, dtype=np.int64)})
        .join(goals, on="customer", how="left")
        .select(
            "customer",
            pl.when(pl.col("len").fill_null(0) > 8)
            .then(pl.lit("heavy"))
            .otherwise(pl.lit("light"))
            .alias("tier"),
            (pl.col("customer") % 50 + 20).cast(pl.Float64).alias("age"),
        )
    )


def shard(frame: pl.DataFrame | None, customers: list[int]) -> pl.DataFrame | None:
    """Keep these customers' rows, renumbered 0..k-1 in the order given."""
    if frame is None:
        return None
    dense = {customer: index for index, customer in enumerate(customers)}
    return frame.filter(pl.col("customer").is_in(customers)).with_columns(
        pl.col("customer").replace_strict(dense, return_dtype=pl.Int64)
    )


def back(frames: dict[str, pl.DataFrame], customers: list[int]) -> dict[str, pl.DataFrame]:
    """Renumber a shard's rows to the original customer ids, sorted canonically."""
    original = {index: customer for index, customer in enumerate(customers)}
    return {
        name: frame.with_columns(pl.col("customer").replace_strict(original, return_dtype=pl.Int64))
        .filter(pl.col("customer").is_in(customers))
        .sort(frame.columns[:3] if name == "weights" else frame.columns[:2])
        for name, frame in frames.items()
    }


def only(frames: dict[str, pl.DataFrame], customers: list[int]) -> dict[str, pl.DataFrame]:
    return back({k: shard(v, customers) for k, v in frames.items()}, customers)


def assert_same_frames(first, second):
    for name in FRAMES:
        assert_frame_equal(first[name], second[name], check_exact=True)


@pytest.fixture(scope="module")
def sample_inputs(workspace, traits):
    """The population fit's inputs: two customers in three, as of AS_OF."""
    sample = [c for c in range(300) if c % 3 != 0]
    return dict(
        events=shard(workspace.events, sample),
        messages=workspace.messages,
        message_labels=workspace.message_labels,
        config=workspace.config,
        horizon=AS_OF,
        traits=shard(traits, sample),
    )


@pytest.fixture(scope="module")
def sample_population(sample_inputs):
    return fit_population(**sample_inputs)


def test_it_gives_a_customer_the_same_rows_alone_in_a_shard_or_with_everyone(
    workspace, traits, sample_population
):
    assert sample_population.baseline.traits is not None
    everyone = list(range(300))
    bucket = [c for c in everyone if c % 7 == 3]
    picked = [3, 10, 17]

    def memory(customers):
        return customer_memory(
            events=shard(workspace.events, customers),
            population=sample_population,
            horizon=AS_OF,
            traits=shard(traits, customers),
        )

    with_everyone = only(memory(everyone), picked)
    in_bucket = only(back(memory(bucket), bucket), picked)
    assert_same_frames(with_everyone, in_bucket)
    # The bucket in reverse order: dense positions change, rows do not.
    reversed_bucket = bucket[::-1]
    assert_same_frames(with_everyone, only(back(memory(reversed_bucket), reversed_bucket), picked))
    for customer in picked:
        alone = back(memory([customer]), [customer])
        for name in FRAMES:
            assert_frame_equal(
                with_everyone[name].filter(pl.col("customer") == customer),
                alone[name],
                check_exact=True,
            )
    assert with_everyone["weights"].height > 0 and with_everyone["habituation"].height > 0
    assert with_everyone["state"]["baseline_rate"].n_unique() == 3


def test_it_matches_compute_memory_when_the_population_is_everyone(workspace, traits):
    result = compute_memory(
        workspace.events,
        workspace.messages,
        workspace.message_labels,
        workspace.config,
        as_of=AS_OF,
        traits=traits,
    )
    population = fit_population(
        events=workspace.events,
        messages=workspace.messages,
        message_labels=workspace.message_labels,
        config=workspace.config,
        horizon=AS_OF,
        traits=traits,
    )
    frames = customer_memory(
        events=workspace.events, population=population, horizon=AS_OF, traits=traits
    )
    assert_frame_equal(frames["weights"], result.weights.drop("rate"), check_exact=True)
    assert_frame_equal(frames["habituation"], result.habituation, check_exact=True)
    shared = ["customer", "primed_score", "baseline_rate", "frequency_rate_h", "hours_since_goal"]
    assert_frame_equal(
        frames["state"].select(*shared, "signals"),
        result.customer_state.select(*shared, "signals"),
        check_exact=True,
    )
    assert (
        frames["state"]["goal_count"].to_list()
        == result.customer_state["goals"].cast(pl.Int64).to_list()
    )
    assert_frame_equal(population.priming, result.priming, check_exact=True)
    assert np.array_equal(population.model.coefficients, result.model.coefficients)


def test_it_gives_the_declared_columns_and_types(workspace, sample_population):
    frames = customer_memory(
        events=shard(workspace.events, [5, 6]), population=sample_population, horizon=AS_OF
    )
    weights = frames["weights"].schema
    assert weights["customer"] == pl.Int64
    assert weights["label_set"] == weights["label"] == pl.Utf8
    assert all(
        dtype == pl.Float64
        for name, dtype in weights.items()
        if name not in {"customer", "label_set", "label"}
    )
    assert frames["habituation"].columns == ["customer", "message", "load", "sends", "last_sent_t"]
    assert frames["habituation"].schema["last_sent_t"] == pl.Float64
    assert frames["state"].columns == STATE_COLUMNS
    assert frames["state"]["customer"].to_list() == [0, 1]
    priming = sample_population.priming.columns
    for column in ("event_name", "lift", "odds_ratio", "odds_ratio_low", "odds_ratio_high"):
        assert column in priming
    assert {"support", "median_lead_h"} <= set(priming)


def test_it_round_trips_the_population_through_bytes(workspace, sample_population):
    blob = sample_population.to_bytes()
    restored = Population.from_bytes(blob)
    assert restored.to_bytes() == blob
    assert restored.config == sample_population.config
    assert restored.baseline.to_dict() == sample_population.baseline.to_dict()
    assert np.array_equal(restored.message_rate, sample_population.message_rate)
    assert (restored.similarity != sample_population.similarity).nnz == 0
    assert_frame_equal(restored.priming, sample_population.priming, check_exact=True)
    assert restored.stats == sample_population.stats
    customers = [0, 1, 2, 3]
    events = shard(workspace.events, customers)
    assert_same_frames(
        customer_memory(events=events, population=sample_population, horizon=AS_OF),
        customer_memory(events=events, population=restored, horizon=AS_OF),
    )
    summary = restored.summary()
    json.dumps(summary, allow_nan=False)
    assert summary["model"]["features"] == list(sample_population.model.features)
    assert len(summary["habituation_curve"]) == sample_population.habituation_curve.height


def test_it_reads_nothing_at_or_after_the_horizon(workspace):
    before = workspace.events.filter(pl.col("t") < AS_OF)
    later = workspace.events.filter(pl.col("t") < 1_000.0).with_columns(pl.col("t") + AS_OF)
    at_horizon = before.head(50).with_columns(pl.lit(AS_OF).alias("t"))
    polluted = pl.concat([before, later, at_horizon])

    def run(events):
        population = fit_population(
            events=events,
            messages=workspace.messages,
            message_labels=workspace.message_labels,
            config=workspace.config,
            horizon=AS_OF,
        )
        return population, customer_memory(events=events, population=population, horizon=AS_OF)

    clean_population, clean = run(before)
    dirty_population, dirty = run(polluted)
    assert dirty_population.to_bytes() == clean_population.to_bytes()
    assert_same_frames(clean, dirty)


def test_it_refuses_a_horizon_before_the_population(workspace, sample_population):
    with pytest.raises(ValueError, match="leak"):
        customer_memory(events=workspace.events, population=sample_population, horizon=AS_OF - 1)


def test_it_returns_empty_frames_for_an_empty_shard(sample_population):
    frames = customer_memory(events=empty_events(), population=sample_population, horizon=AS_OF)
    assert all(frames[name].height == 0 for name in FRAMES)
    assert frames["weights"].schema["alpha"] == pl.Float64


def test_it_fits_a_population_from_no_events(workspace):
    population = fit_population(
        events=empty_events(),
        messages=workspace.messages,
        message_labels=workspace.message_labels,
        config=workspace.config,
        horizon=AS_OF,
    )
    Population.from_bytes(population.to_bytes())
    scored = score_with_population(
        events=empty_events(),
        population=population,
        horizon=AS_OF,
        candidates=pl.DataFrame({"customer": [0], "message": [1]}),
    )
    assert 0.0 < scored["p_goal"].item() < 1.0


def test_it_keeps_a_customer_without_sends_in_the_state_only(sample_population):
    events = pl.DataFrame(
        {"customer": [0, 0], "name": ["Order Completed", "Page Viewed"], "t": [5.0, 9.0]}
    )
    frames = customer_memory(events=events, population=sample_population, horizon=AS_OF)
    assert frames["weights"].height == 0
    assert frames["habituation"].height == 0
    state = frames["state"].row(0, named=True)
    assert state["customer"] == 0
    assert 0.0 < state["baseline_rate"] < 1.0
    assert state["signals"] == "[]"


def test_it_lists_recent_priming_signals_most_recent_first(sample_population):
    table = sample_population.priming.filter(pl.col("event_name") == PRIMING_ACTION)
    assert table["primes"].item()
    hours_ago = [100.0, 2.0, 5.0, 30.0, 10.0, 20.0, 40.0]
    events = pl.DataFrame(
        {
            "customer": [0] * 7 + [1],
            "name": [PRIMING_ACTION] * 7 + ["Page Viewed"],
            "t": [AS_OF - h for h in hours_ago] + [AS_OF - 1.0],
        }
    )
    state = customer_memory(events=events, population=sample_population, horizon=AS_OF)["state"]
    signals = json.loads(state["signals"][0])
    assert [s["hours_ago"] for s in signals] == [2.0, 5.0, 10.0, 20.0, 30.0]
    assert {s["event"] for s in signals} == {PRIMING_ACTION}
    assert signals[0]["lift"] == pytest.approx(table["lift"].item(), abs=1e-3)
    assert state["signals"][1] == "[]"
    assert state["primed_score"][0] > 0.0 == state["primed_score"][1]


def test_it_scores_and_ranks_a_shard_like_the_whole(workspace):
    result = compute_memory(
        workspace.events, workspace.messages, workspace.message_labels, workspace.config, AS_OF
    )
    customers = [8, 21, 34]
    candidates = pl.DataFrame({"customer": [8, 21, 34, 8], "message": [0, 5, 9, 23]})
    whole = score_candidates(result, candidates)
    dense = {c: i for i, c in enumerate(customers)}
    scored = score_with_population(
        events=shard(workspace.events, customers),
        population=result.population,
        horizon=AS_OF,
        candidates=candidates.with_columns(pl.col("customer").replace_strict(dense)),
    )
    assert_frame_equal(scored.drop("customer"), whole.drop("customer"), check_exact=True)
    boosts = pl.DataFrame({"label_set": ["offer"], "label": ["bogo"], "boost": [1.0]})
    for explore in (False, True):
        ranked = rank_with_population(
            events=shard(workspace.events, customers),
            population=result.population,
            horizon=AS_OF,
            customer=dense[21],
            boosts=boosts,
            explore=explore,
            seed=4,
        )
        assert_frame_equal(
            ranked, rank_messages(result, 21, boosts=boosts, explore=explore, seed=4)
        )


def test_it_fits_on_a_sample_larger_than_the_replay_sample(workspace):
    config = EngineConfig(max_training_customers=100)
    population = fit_population(
        events=workspace.events,
        messages=workspace.messages,
        message_labels=workspace.message_labels,
        config=config,
        horizon=AS_OF,
    )
    assert population.model.training_rows > 0
    assert population.stats["customers"] == 300.0


def test_its_statistics_alone_give_shards_the_same_rows_and_its_steps_any_time_the_same_model(
    workspace, traits, sample_inputs, sample_population
):
    fit = fit_statistics(**sample_inputs)
    assert fit.population.model is None and fit.steps_left == 1 + 6  # curve, six replays
    before_steps = customer_memory(
        events=workspace.events, population=fit.population, horizon=AS_OF, traits=traits
    )
    assert fit.step() and fit.step()  # two taken early, as while waiting on a read
    assert fit.steps_left == 5

    population, replay = fit.finish()

    assert fit.steps_left == 0 and len(replay) >= 2 and fit.seconds > 0  # empty cut-offs skipped
    assert population.to_bytes() == sample_population.to_bytes()
    whole = customer_memory(
        events=workspace.events, population=population, horizon=AS_OF, traits=traits
    )
    assert_same_frames(before_steps, whole)
