"""The next-best API and command serve explored, logged decisions; with a campaign, by arm."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from campaigns.tenancy.services import api_key_create
from memory.models import Decision
from memory.scoring.exploration import NO_MEMORY, assign_arm
from tests.campaigns.prompt_support import customer, message
from tests.memory.decision_support import holdout_campaign, plant_next_best, succeeded_run


def auth(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def planted(workspace):
    offers = [message(workspace, f"m{i}", f"Offer {i}") for i in range(3)]
    campaign = holdout_campaign(workspace, offers[1:], random=0.33, no_memory=0.33)
    people = [customer(workspace, f"c{i}") for i in range(48)]
    for person in people:
        plant_next_best(workspace, person, [(offers[0], 2.0), (offers[1], 1.5), (offers[2], 0.0)])
    plant_next_best(workspace, None, [(offers[2], 1.0), (offers[1], 0.0)], spread=0.0)
    succeeded_run(workspace)
    return campaign, offers, people


def next_best(client, key, external_id, query=""):
    return client.get(reverse("api-customer-next-best", args=[external_id]) + query, **auth(key))


def test_it_serves_an_explored_decision_and_logs_it(client, read_key, workspace, planted):
    _, offers, _ = planted
    data = next_best(client, read_key, "c0").json()
    decision = data["decision"]
    assert (data["arm"], decision["policy"]) == ("", "thompson")
    assert [e["message_id"] for e in decision["eligible"]] == [o.pk for o in offers]
    assert sum(e["propensity"] for e in decision["eligible"]) == pytest.approx(1.0)
    assert decision["primer_message_id"] == offers[0].pk
    stored = Decision.objects.for_workspace(workspace).get(public_id=decision["decision_id"])
    assert (stored.message_id, stored.source, stored.campaign_id) == (
        decision["message_id"],
        "api",
        None,
    )
    assert stored.propensity == pytest.approx(decision["propensity"])
    # Rank only: nothing logged.
    plain = next_best(client, read_key, "c0", "?decide=false").json()
    assert "decision" not in plain and plain["offers"][0]["key"] == "m0"
    assert Decision.objects.for_workspace(workspace).count() == 1


def test_it_answers_a_campaign_by_the_customers_arm(client, read_key, workspace, planted):
    campaign, _, people = planted
    seen = set()
    for person in people:
        data = next_best(client, read_key, person.external_id, "?campaign=spring").json()
        arm = assign_arm(workspace.pk, campaign.pk, person.pk, campaign.holdout_shares)
        assert data["arm"] == arm == data["decision"]["arm"]
        seen.add(arm)
        keys = [offer["key"] for offer in data["offers"]]
        # Only the campaign's messages; the no-memory arm sees the population's list.
        assert keys == (["m2", "m1"] if arm == NO_MEMORY else ["m1", "m2"])
    assert len(seen) == 3
    assert next_best(client, read_key, "c0", "?campaign=nope").status_code == 404


def test_a_campaign_exploring_a_fixed_share_says_so_in_the_api(
    client, read_key, workspace, planted
):
    campaign, offers, _ = planted
    campaign.exploration, campaign.explore_share = "epsilon", 0.3
    campaign.holdout_random = campaign.holdout_no_memory = 0.0
    campaign.save()
    data = next_best(client, read_key, "c0", "?campaign=spring").json()
    decision = data["decision"]
    assert (data["arm"], decision["policy"]) == ("primer", "epsilon")
    # Two eligible messages: the best gets 1 - 0.3 + 0.15, the other 0.15.
    assert [(e["message_id"], e["propensity"]) for e in decision["eligible"]] == [
        (offers[1].pk, pytest.approx(0.85)),
        (offers[2].pk, pytest.approx(0.15)),
    ]
    stored = Decision.objects.for_workspace(workspace).get(public_id=decision["decision_id"])
    assert stored.policy == "epsilon"


def test_it_refuses_what_it_should(client, read_key, other_workspace, planted):
    _, foreign = api_key_create(workspace=other_workspace, scopes=["read"], name="foreign")
    assert next_best(client, foreign, "c0").status_code == 404
    assert next_best(client, read_key, "c0", "?decide=maybe").status_code == 400


def test_the_command_serves_one_customer_or_everyone_in_one_write(
    workspace, planted, capsys, django_assert_max_num_queries
):
    call_command("next_best", workspace="acme", customer="c3", campaign="spring")
    out = capsys.readouterr().out
    decision = Decision.objects.for_workspace(workspace).get()
    assert f"decision {decision.public_id}" in out and decision.source == "command"
    # Everyone at once: a bounded number of queries whatever the number of customers.
    with django_assert_max_num_queries(12):
        call_command("next_best", workspace="acme", all=True)
    assert "48 decisions served" in capsys.readouterr().out
    assert Decision.objects.for_workspace(workspace).filter(campaign=None).count() == 48
