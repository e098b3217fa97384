"""The engagement memory: a customer's opens per label, against their usual opens."""

import json

import numpy as np
import polars as pl
import pytest

from memory.scoring import compute_memory
from memory.scoring.customers import run_pass
from memory.scoring.model import ALL_FEATURES, calibrated_p, candidate_features
from memory.scoring.population import MAGIC, Population
from memory.scoring.synthetic import LABEL_SETS, synthetic_workspace

OFFERS = LABEL_SETS["offer"]


def run(planted, events=None, **kwargs):
    return compute_memory(
        planted.events if events is None else events,
        planted.messages,
        planted.message_labels,
        planted.config,
        as_of=planted.span_h,
        **kwargs,
    )


@pytest.fixture(scope="module")
def planted():
    return synthetic_workspace(600, 40_000, seed=21)


@pytest.fixture(scope="module")
def result(planted):
    return run(planted)


def engagement_of(result, customer: int) -> dict[str, float]:
    """Return the customer's engagement per offer label, by label name."""
    catalogue = result.population.catalogue
    row = result.state.engagement[customer].toarray().ravel()
    return {
        label: float(row[label_id])
        for label_id, label_set, label in catalogue.select("label_id", "label_set", "label").rows()
        if label_set == "offer"
    }


def test_a_customer_who_opens_one_offer_only_is_drawn_to_it_and_away_from_the_rest(planted):
    # Customer 0 opens every send of bogo messages and none of the others.
    offers = planted.message_labels.filter(pl.col("label_set") == "offer")
    bogo = offers.filter(pl.col("label") == "bogo")["message"]
    sends = planted.events.filter(
        (pl.col("customer") == 0) & (pl.col("name") == planted.config.send_event)
    )
    assert sends["message"].is_in(bogo.implode()).any()
    others = planted.events.filter(
        ~((pl.col("customer") == 0) & (pl.col("name") == planted.config.open_event))
    )
    opens = sends.filter(pl.col("message").is_in(bogo.implode())).with_columns(
        pl.lit(planted.config.open_event).alias("name"), pl.col("t") + 0.5
    )
    engagement = engagement_of(run(planted, pl.concat([others, opens])), 0)
    assert engagement["bogo"] > 0
    assert all(engagement[label] < 0 for label in OFFERS if label != "bogo")


def test_opens_tell_the_planted_favourite_and_the_model_weighs_them(planted, result):
    # The planted open rate rises with the customer's preference, so the top-engagement offer
    # should be the planted favourite far more often than one time in four.
    preference = (
        planted.preferences.filter(pl.col("label_set") == "offer")
        .pivot(on="label", index="customer", values="preference")
        .sort("customer")
    )
    favourite = preference.select(OFFERS).to_numpy().argmax(axis=1)
    catalogue = result.population.catalogue.filter(pl.col("label_set") == "offer")
    ids = [catalogue.filter(pl.col("label") == label)["label_id"].item() for label in OFFERS]
    top = result.state.engagement[:, ids].toarray().argmax(axis=1)
    assert np.mean(top == favourite[: top.size]) > 0.4
    assert "engagement" in result.model.features
    slope = result.model.coefficients[1 + result.model.features.index("engagement")]
    assert slope > 0


def test_without_opens_there_is_no_engagement_memory_and_no_such_feature(planted):
    events = planted.events.filter(pl.col("name") != planted.config.open_event)
    without = run(planted, events)
    assert without.population.engagement_priors.height == 0
    assert without.state.engagement.nnz == 0
    assert "engagement" not in without.model.features


def without_engagement(blob: bytes) -> bytes:
    """Return a stored population as written before the engagement memory: no open prior in
    the header and no engagement priors frame."""
    at, sections = len(MAGIC), []
    while at < len(blob):
        size = int.from_bytes(blob[at : at + 8], "little")
        sections.append(blob[at + 8 : at + 8 + size])
        at += 8 + size
    header = json.loads(sections[0])
    index = 1 + header["frames"].index("engagement_priors")
    header["frames"].remove("engagement_priors")
    del header["open_prior"]
    kept = [json.dumps(header, sort_keys=True).encode(), *sections[1:index], *sections[index + 1 :]]
    return MAGIC + b"".join(len(part).to_bytes(8, "little") + part for part in kept)


def test_the_engagement_priors_survive_storage_and_an_older_population_has_none(planted, result):
    stored = Population.from_bytes(result.population.to_bytes())
    assert stored.open_prior == pytest.approx(result.population.open_prior)
    assert stored.engagement_priors.equals(result.population.engagement_priors)
    older = Population.from_bytes(without_engagement(result.population.to_bytes()))
    assert older.engagement_priors.height == 0
    assert np.array_equal(older.message_rate, result.population.message_rate)
    passed = run_pass(planted.events, older, planted.span_h)
    assert passed.state.engagement.nnz == 0


def planted_value(planted, memory) -> float:
    """Return the mean planted effect of the message the memory ranks first per customer."""
    effect = planted.planted_effect(planted.span_h)
    rows = np.arange(effect.shape[0])
    customers = np.repeat(rows, effect.shape[1])
    messages = np.tile(np.arange(effect.shape[1]), rows.size)
    p = calibrated_p(memory.model, candidate_features(memory.state, customers, messages))
    return float(effect[rows, p.reshape(rows.size, -1).argmax(axis=1)].mean())


def test_the_engagement_feature_improves_the_planted_choice(planted, result):
    # Ablation on the same data: the same engine without the engagement feature in the model.
    without = run(planted, features=tuple(f for f in ALL_FEATURES if f != "engagement"))
    assert planted_value(planted, result) > planted_value(planted, without)
