"""The customer and campaign pages read the stored next best lists: they answer the same with
the engine's population gone, in a bounded number of queries."""

import pytest
from django.urls import reverse

from campaigns.catalogue.campaign_services import campaign_create
from campaigns.models import Message
from campaigns.tenancy.changes import Actor
from memory.models import RecomputeRun
from memory.next_best import next_best_for
from memory.predict import NoMemoryYet, memory_next_best
from tests.memory.engine_fixtures import load_synthetic, recompute_here


@pytest.fixture
def stored(workspace):
    load_synthetic(workspace, customers=40, events=4_000)
    recompute_here(workspace=workspace)
    # Without the stored population the engine cannot rank: only stored rows can answer now.
    RecomputeRun.objects.for_workspace(workspace).update(population=None)
    with pytest.raises(NoMemoryYet):
        memory_next_best(workspace=workspace, external_id="c3")


def test_the_customer_page_shows_the_stored_list(
    member_client, workspace, stored, django_assert_max_num_queries
):
    expected = next_best_for(workspace=workspace, external_id="c3", limit=5)
    # + 3: the guardrails, overrides and labels each decision reads once (decision 0260);
    # + 3: the event timeline's customer, bounded events and priming actions.
    with django_assert_max_num_queries(20):
        page = member_client.get(reverse("customer-detail", args=["c3"]))
    assert page.status_code == 200
    assert [offer.key for offer in page.context["ranking"]] == [o.key for o in expected.offers]
    assert len(expected.offers) == 5
    assert "As of the recompute at" in page.content.decode()


def test_the_campaign_page_shows_each_customers_best_among_its_messages(
    member_client, workspace, stored, django_assert_max_num_queries
):
    chosen = list(Message.objects.for_workspace(workspace).order_by("key")[:6])
    campaign_create(
        workspace=workspace,
        actor=Actor.system("test"),
        slug="spring",
        name="Spring",
        messages=chosen,
    )
    keys = {message.key for message in chosen}
    # A bounded number, whatever the customers shown (one of them: the campaign's messages the
    # last recompute did not rank for everyone, as here, created after it).
    with django_assert_max_num_queries(21):
        page = member_client.get(reverse("campaign", args=["spring"]))
    assert "Not ranked for everyone by the last recompute" in page.content.decode()
    assert page.status_code == 200
    shown = {customer.external_id: best for customer, best in page.context["customers"]}
    assert shown and any(best is not None for best in shown.values())
    for external_id, best in shown.items():
        stored = next_best_for(workspace=workspace, external_id=external_id, limit=20).offers
        first = next((offer for offer in stored if offer.key in keys), None)
        assert (best.key if best else None) == (first.key if first else None)
