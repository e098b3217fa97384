"""The stored next best lists: the recompute ranks as the engine does, the read path reads them,
excludes before it explores, and says plainly when there is nothing."""

import pytest
from django.test.utils import override_settings

from campaigns.models import Label, Message
from memory.models import Customer, CustomerNextBest
from memory.next_best import NO_RECOMPUTE, next_best_for
from memory.predict import memory_next_best, ranking_reasons
from tests.memory.engine_fixtures import load_synthetic, recompute_here


@pytest.fixture
def stored(workspace):
    synthetic = load_synthetic(workspace, customers=60, events=6_000)
    # The latest memory (no as-of): the time memory_next_best scores at by default.
    recompute_here(workspace=workspace)
    return synthetic


def test_it_stores_the_engines_ranking_with_its_reasons(workspace, stored):
    for external_id in ("c1", "c7", "c42"):
        engine = ranking_reasons(
            memory_next_best(workspace=workspace, external_id=external_id, limit=20)
        )
        answer = next_best_for(workspace=workspace, external_id=external_id, limit=20)
        assert [offer.key for offer in answer.offers] == [row["key"] for row in engine]
        for offer, row in zip(answer.offers, engine, strict=True):
            assert offer.p_goal == pytest.approx(row["p_goal"], rel=1e-9)
            assert offer.score == pytest.approx(row["score"], rel=1e-9)
            assert offer.pull == pytest.approx(row["pull"], rel=1e-9)
            assert offer.labels == pytest.approx(row["labels"], rel=1e-9)
            assert offer.wear_out == pytest.approx(row["wear_out"], rel=1e-9)
            assert offer.spread > 0  # the labels' posteriors are uncertain
        assert answer.cold_start is False and answer.nothing_now == "" and answer.as_of


def test_it_honours_label_boosts_and_skips_inactive_messages(workspace, stored):
    before = [o.key for o in next_best_for(workspace=workspace, external_id="c3").offers]
    Label.objects.for_workspace(workspace).filter(slug="playful").update(boost=1.0)
    recompute_here(workspace=workspace)
    engine = memory_next_best(workspace=workspace, external_id="c3", limit=20)
    boosted = next_best_for(workspace=workspace, external_id="c3", limit=20)
    assert [offer.key for offer in boosted.offers] == engine["key"].to_list()
    assert [offer.key for offer in boosted.offers][:10] != before
    assert {round(offer.boost, 6) for offer in boosted.offers} - {0.0}  # some carry the boost

    archived = boosted.offers[0].key
    Message.objects.for_workspace(workspace).filter(key=archived).update(active=False)
    after = next_best_for(workspace=workspace, external_id="c3", limit=20)
    assert archived not in [offer.key for offer in after.offers]
    assert [offer.rank for offer in after.offers] == list(range(1, len(after.offers) + 1))


@override_settings(PRIMER_NEXT_BEST_STORED=5)
def test_it_keeps_the_configured_number_per_customer(workspace, stored):
    recompute_here(workspace=workspace)
    rows = CustomerNextBest.objects.for_workspace(workspace)
    per_customer = rows.filter(customer__isnull=False).values_list("customer_id", flat=True)
    customers = set(per_customer)
    assert len(customers) == 60 and per_customer.count() == 5 * 60
    assert rows.filter(customer__isnull=True, cold_start=True).count() == 5


def test_it_explores_the_same_way_for_the_same_seed(workspace, stored):
    first = next_best_for(workspace=workspace, external_id="c5", explore=True, seed=7, limit=20)
    again = next_best_for(workspace=workspace, external_id="c5", explore=True, seed=7, limit=20)
    assert first.offers == again.offers
    assert all(offer.drawn is not None for offer in first.offers)
    drawn = [offer.drawn for offer in first.offers]
    assert drawn == sorted(drawn, reverse=True)
    orders = {
        tuple(
            offer.key
            for offer in next_best_for(
                workspace=workspace, external_id="c5", explore=True, seed=seed, limit=20
            ).offers
        )
        for seed in range(8)
    }
    assert len(orders) > 1  # the draws move the ranking


def test_a_customer_without_events_gets_the_populations_list(workspace, stored):
    Customer.objects.create(workspace=workspace, external_id="newbie")
    answer = next_best_for(workspace=workspace, external_id="newbie")
    assert answer.cold_start is True and answer.offers
    engine = memory_next_best(workspace=workspace, external_id="newbie", limit=10)
    assert [offer.key for offer in answer.offers] == engine["key"].to_list()


def test_it_says_plainly_there_is_no_memory_yet(workspace):
    Customer.objects.create(workspace=workspace, external_id="early")
    answer = next_best_for(workspace=workspace, external_id="early")
    assert answer.offers == [] and answer.nothing_now == NO_RECOMPUTE
    with pytest.raises(Customer.DoesNotExist):
        next_best_for(workspace=workspace, external_id="nobody")
