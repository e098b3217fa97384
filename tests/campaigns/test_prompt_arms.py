"""Campaign prompts by holdout arm: the no-memory arm sees the average customer; a served
prompt states a logged decision."""

import pytest
from django.urls import reverse

from memory.models import Decision
from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM, assign_arm
from tests.campaigns.prompt_support import customer, label, message, remember
from tests.memory.decision_support import holdout_campaign, plant_next_best, succeeded_run


def auth(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def planted(workspace):
    offers = [message(workspace, f"m{i}", f"Offer {i}\nBody {i}") for i in range(3)]
    campaign = holdout_campaign(workspace, offers[:2], random=0.3, no_memory=0.3)
    convenience = label(workspace, "convenience", phrase="convenience")
    people = []
    for i in range(40):
        person = customer(workspace, f"c{i}", {"plan": "gold"})
        remember(person, weights={convenience: (0.7, 8.0, 3.0, 10.0)})
        plant_next_best(workspace, person, [(offers[2], 3.0), (offers[0], 1.0), (offers[1], 0.0)])
        people.append(person)
    plant_next_best(workspace, None, [(offers[1], 2.0), (offers[0], 0.5)], spread=0.0)
    succeeded_run(workspace)
    return campaign, offers, people


def test_it_renders_each_arm_and_logs_the_decision_the_prompt_states(
    client, read_key, workspace, planted
):
    campaign, offers, people = planted
    arms = {}
    for person in people:
        response = client.get(
            reverse("api-customer-prompt", args=[person.external_id])
            + "?campaign=spring&include_context=true",
            **auth(read_key),
        )
        assert response.status_code == 200
        data = response.json()
        expected = assign_arm(workspace.pk, campaign.pk, person.pk, campaign.holdout_shares)
        assert data["arm"] == expected
        arms[person.pk] = expected
        decision = Decision.objects.for_workspace(workspace).get(public_id=data["decision_id"])
        assert (decision.customer_id, decision.arm, decision.source) == (
            person.pk,
            expected,
            "prompt",
        )
        # Only the campaign's messages are eligible (m2 ranks first for everyone but is not).
        assert set(decision.eligible) == {offers[0].pk, offers[1].pk}
        assert sum(decision.propensities) == pytest.approx(1.0)
        assert data["context"]["next_best"]["decision_id"] == data["decision_id"]
        assert decision.message.key in data["prompt"]
        if expected == NO_MEMORY:
            # The average customer: no traits, no learned labels, the population's list.
            assert "gold" not in data["prompt"] and "convenience" not in data["prompt"]
            assert data["memory_at"] is None
            assert decision.primer_message_id == offers[1].pk
            # Spread 0: the top wins every draw; the floor's mix leaves the other 0.01.
            assert decision.propensities == pytest.approx([0.99, 0.01])
        else:
            assert "gold" in data["prompt"] and "convenience" in data["prompt"]
            assert decision.primer_message_id == offers[0].pk
        served = decision.eligible.index(decision.message_id)
        assert decision.propensity == pytest.approx(decision.propensities[served])
        if expected == RANDOM:
            assert (decision.policy, decision.propensities) == ("uniform", [0.5, 0.5])
        else:
            assert decision.policy == "thompson"
    assert set(arms.values()) == {PRIMER, RANDOM, NO_MEMORY}


def test_it_logs_an_export_of_a_campaign_in_bulk_and_a_plain_prompt_not_at_all(
    client, read_key, workspace, planted
):
    response = client.get(reverse("api-prompts-export") + "?campaign=spring", **auth(read_key))
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 40
    assert Decision.objects.for_workspace(workspace).filter(source="export").count() == 40
    # Without a campaign nothing is decided: no arm, no decision.
    plain = client.get(reverse("api-customer-prompt", args=["c1"]), **auth(read_key)).json()
    assert (plain["arm"], plain["decision_id"]) == ("", "")
    assert Decision.objects.for_workspace(workspace).count() == 40
