"""A campaign's holdout shares and exploration: edited in the form and over the API, validated,
audited."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from campaigns.catalogue.campaign_services import campaign_create, campaign_update
from campaigns.models import AuditEntry, Campaign
from campaigns.tenancy.changes import Actor
from tests.campaigns.config_support import api

ACTOR = Actor.system("test")


@pytest.fixture
def spring(workspace):
    return campaign_create(workspace=workspace, actor=ACTOR, slug="spring", name="Spring")


def test_it_keeps_and_audits_the_shares(workspace, spring):
    assert (spring.holdout_random, spring.holdout_no_memory, spring.has_holdouts) == (0, 0, False)
    saved = campaign_update(
        workspace=workspace,
        actor=ACTOR,
        campaign=spring,
        expected_version=1,
        changes={"holdout_random": 0.1, "holdout_no_memory": 0.05},
    )
    assert saved.holdout_shares == {"random": 0.1, "no_memory": 0.05}
    entry = AuditEntry.objects.for_workspace(workspace).filter(action="update").get()
    assert ("holdout_random", 0.0, 0.1) in entry.changed_fields()


@pytest.mark.parametrize(
    "changes",
    [
        *({"holdout_no_memory": share} for share in (-0.1, 0.51, "half", True, float("nan"))),
        {"exploration": "greedy", "explore_share": -1},
        {"explore_share": 0.7},
    ],
)
def test_it_refuses_a_share_or_exploration_out_of_range_by_field(workspace, spring, changes):
    with pytest.raises(ValidationError) as refused:
        campaign_update(
            workspace=workspace,
            actor=ACTOR,
            campaign=spring,
            expected_version=1,
            changes=changes,
        )
    assert set(changes) <= set(refused.value.message_dict)


def test_it_edits_the_shares_in_the_form_with_errors_beside_the_field(
    member_client, workspace, spring
):
    form = member_client.get(reverse("campaign-edit", args=["spring"])).content.decode()
    assert 'name="holdout_random"' in form and 'name="holdout_no_memory"' in form
    refused = member_client.post(
        reverse("campaign-edit", args=["spring"]),
        {"name": "Spring", "version": 1, "audience": "{}", "holdout_random": "0.8"},
    )
    assert refused.status_code == 200
    assert 'id="field-holdout_random"' in refused.content.decode()
    saved = member_client.post(
        reverse("campaign-edit", args=["spring"]),
        {"name": "Spring", "version": 1, "audience": "{}", "holdout_random": "0.2", "active": "on"},
    )
    assert saved.status_code == 302
    assert Campaign.objects.for_workspace(workspace).get().holdout_random == 0.2
    page = member_client.get(reverse("campaign", args=["spring"])).content.decode()
    assert "random message 0.20" in page and reverse("campaign-uplift", args=["spring"]) in page


def test_it_edits_the_shares_over_the_api(client, config_key, read_key, spring):
    changed = api(
        client,
        "patch",
        "/api/v1/campaigns/spring",
        config_key,
        {"holdout_random": 0.25, "holdout_no_memory": 0.1, "version": 1},
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["holdout_random"], changed.json()["holdout_no_memory"]) == (0.25, 0.1)
    refused = api(client, "patch", "/api/v1/campaigns/spring", config_key, {"holdout_random": 0.9})
    assert refused.status_code == 400 and "holdout_random" in refused.json()
    read_only = api(client, "patch", "/api/v1/campaigns/spring", read_key, {"holdout_random": 0})
    assert read_only.status_code == 403


def test_it_sets_the_exploration_in_the_form_and_over_the_api(
    member_client, client, config_key, workspace, spring
):
    assert (spring.exploration, spring.explore_share) == ("thompson", 0.1)
    form = member_client.get(reverse("campaign-edit", args=["spring"])).content.decode()
    assert 'name="exploration"' in form and 'name="explore_share"' in form
    post = {"name": "Spring", "version": 1, "audience": "{}", "active": "on"}
    refused = member_client.post(
        reverse("campaign-edit", args=["spring"]), post | {"explore_share": "0.7"}
    )
    assert 'id="field-explore_share"' in refused.content.decode()
    saved = member_client.post(
        reverse("campaign-edit", args=["spring"]),
        post | {"exploration": "epsilon", "explore_share": "0.05"},
    )
    assert saved.status_code == 302
    found = Campaign.objects.for_workspace(workspace).get()
    assert (found.exploration, found.explore_share) == ("epsilon", 0.05)
    page = member_client.get(reverse("campaign", args=["spring"])).content.decode()
    assert "5% of decisions drawn at random" in page
    entry = AuditEntry.objects.for_workspace(workspace).filter(action="update").get()
    assert ("exploration", "thompson", "epsilon") in entry.changed_fields()

    changed = api(
        client,
        "patch",
        "/api/v1/campaigns/spring",
        config_key,
        {"exploration": "thompson", "version": 2},
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["exploration"], changed.json()["explore_share"]) == ("thompson", 0.05)
    for bad in ({"exploration": "greedy"}, {"explore_share": 0.6}, {"explore_share": "x"}):
        refused = api(client, "patch", "/api/v1/campaigns/spring", config_key, bad)
        assert refused.status_code == 400 and next(iter(bad)) in refused.json(), bad
