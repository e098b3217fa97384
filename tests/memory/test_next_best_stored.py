"""The stored next best lists: the recompute ranks as the engine does, the read path reads them,
excludes before it explores, and says plainly when there is nothing."""

import pytest
from django.test.utils import override_settings

from campaigns.catalogue.campaign_selectors import campaign_messages_unranked
from campaigns.catalogue.campaign_services import campaign_create
from campaigns.models import Campaign, Label, Message
from campaigns.tenancy.changes import Actor
from memory.decisions import customers_decisions_serve
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


@override_settings(PRIMER_NEXT_BEST_STORED=5)
def test_a_live_campaigns_messages_are_stored_for_everyone_wherever_they_rank(workspace, stored):
    recompute_here(workspace=workspace)
    full = {  # every customer's ranking over all messages, from the engine
        external_id: memory_next_best(workspace=workspace, external_id=external_id, limit=100)[
            "key"
        ].to_list()
        for external_id in ("c2", "c9", "c30")
    }
    # The two messages least often in anyone's top 5: most customers have neither stored.
    top5 = list(
        CustomerNextBest.objects.for_workspace(workspace)
        .filter(customer__isnull=False)
        .values_list("customer_id", "message__key")
    )
    rare = sorted(
        Message.objects.for_workspace(workspace).values_list("key", flat=True),
        key=lambda key: (sum(stored_key == key for _, stored_key in top5), key),
    )[:2]
    having_before = {customer for customer, key in top5 if key in rare}
    assert len(having_before) < Customer.objects.for_workspace(workspace).count()
    campaign_create(
        workspace=workspace,
        actor=Actor.system("t"),
        slug="rare",
        name="Rare",
        messages=list(Message.objects.for_workspace(workspace).filter(key__in=rare)),
    )
    campaign = Campaign.objects.for_workspace(workspace).get(slug="rare")
    assert campaign_messages_unranked(campaign=campaign) == sorted(rare)  # until a recompute
    recompute_here(workspace=workspace)
    assert campaign_messages_unranked(campaign=campaign) == []

    rows = CustomerNextBest.objects.for_workspace(workspace).filter(customer__isnull=False)
    for external_id, ranking in full.items():
        mine = rows.filter(customer__external_id=external_id).order_by("rank")
        stored_keys = [row.message.key for row in mine]
        # Their five best, then the campaign's messages at their ranks among all messages.
        assert stored_keys[:5] == ranking[:5]
        assert set(stored_keys) == set(ranking[:5]) | set(rare)
        for row in mine:
            assert row.rank == ranking.index(row.message.key) + 1
    customers = list(Customer.objects.for_workspace(workspace))
    assert {r.customer_id for r in rows.filter(message__key__in=rare)} == {c.pk for c in customers}
    population = CustomerNextBest.objects.for_workspace(workspace).filter(customer__isnull=True)
    assert set(rare) <= set(population.values_list("message__key", flat=True))
    served = customers_decisions_serve(
        workspace=workspace,
        customer_ids=[c.pk for c in customers],
        source="api",
        campaign=campaign,
    )
    assert len(served) == len(customers)  # every customer decided for among the campaign's
