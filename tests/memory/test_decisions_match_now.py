"""Match and count now: the uplift page's button and POST /api/v1/decisions/match do what the
beat does every 5 minutes, here with in-process tasks, queued with workers, refused without."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from campaigns.catalogue.campaign_services import campaign_create
from campaigns.models import Membership
from campaigns.tenancy.changes import Actor
from memory.decision_matching import decisions_match
from memory.decision_selectors import campaign_decision_count_rows
from memory.models import Decision, Event, UpliftCounts
from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM
from tests.campaigns.prompt_support import customer, message
from tests.memory.decision_support import decide, holdout_campaign
from tests.memory.test_decisions_worker import wait_until


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def served_campaign(workspace):
    """A campaign with a holdout and nine served decisions, none counted yet."""
    offers = [message(workspace, f"m{i}", f"Offer {i}") for i in range(2)]
    campaign = holdout_campaign(workspace, offers)
    Decision.objects.bulk_create(
        decide(
            workspace,
            campaign,
            customer(workspace, f"c{i}"),
            (PRIMER, RANDOM, NO_MEMORY)[i % 3],
            offers[i % 2],
            offers[0],
            goal=i % 2 == 0,
            revenue=None,
        )
        for i in range(9)
    )
    return campaign


def counted(workspace, campaign):
    return UpliftCounts.objects.for_workspace(workspace).filter(campaign=campaign).first()


@pytest.mark.django_db
def test_an_editor_counts_from_the_uplift_page_and_a_viewer_cannot(
    client, make_user, workspace, served_campaign, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # in-process, as in the demo
    page = reverse("campaign-uplift", args=["spring"])
    match = reverse("memory-decisions-match")
    client.force_login(make_user("viewer", workspace=workspace, role=Membership.Role.VIEWER))
    shown = client.get(page).content.decode()
    assert "Not counted yet" in shown and 'id="match-now"' not in shown
    refused = client.post(match, {"next": page}, follow=True).content.decode()
    assert "Only editors and owners can start the matching." in refused
    assert counted(workspace, served_campaign) is None

    client.force_login(make_user("editor", workspace=workspace, role=Membership.Role.EDITOR))
    assert 'id="match-now"' in client.get(page).content.decode()
    response = client.post(match, {"next": page}, follow=True)

    assert response.redirect_chain == [(page, 302)]
    shown = response.content.decode()
    assert "Matched and counted: 0 sends matched to decisions, 0 outcomes resolved." in shown
    assert "Counted " in shown and "Not counted yet" not in shown
    stored = counted(workspace, served_campaign)
    assert stored.rows == campaign_decision_count_rows(campaign=served_campaign)
    assert sum(row[4] for row in stored.rows) == 9
    # Elsewhere than this site, the answer goes back to the memory page instead.
    away = client.post(match, {"next": "https://elsewhere.example/"})
    assert away["Location"] == reverse("memory-overview")


@pytest.mark.django_db
def test_the_api_matches_at_once_in_process_and_needs_the_write_scope(
    client, workspace, served_campaign, write_key, read_key, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert client.post("/api/v1/decisions/match", **bearer(read_key)).status_code == 403
    assert counted(workspace, served_campaign) is None

    response = client.post("/api/v1/decisions/match", **bearer(write_key))

    assert response.status_code == 200
    assert response.json() == {"queued": False, "named": 0, "windowed": 0, "resolved": 0}
    first = counted(workspace, served_campaign).counted_at
    # Asked again with nothing new, it counts again (whoever asked sees a newer count), and a
    # campaign without decisions is counted too (empty), so no page waits for it forever.
    quiet = campaign_create(workspace=workspace, actor=Actor.system(), slug="quiet", name="Q")
    assert client.post("/api/v1/decisions/match", **bearer(write_key)).status_code == 200
    assert counted(workspace, served_campaign).counted_at > first
    assert counted(workspace, quiet).rows == []


@pytest.mark.django_db
def test_without_a_broker_the_api_and_the_page_say_so_and_count_nothing(
    client, make_user, workspace, served_campaign, write_key, settings, closed_port_broker
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    response = client.post("/api/v1/decisions/match", **bearer(write_key))
    assert response.status_code == 503
    assert "No task broker (Redis) answers, so a matching" in response.json()["detail"]
    assert response.json()["retryable"] is True
    client.force_login(make_user("editor", workspace=workspace, role=Membership.Role.EDITOR))
    page = reverse("campaign-uplift", args=["spring"])
    shown = client.post(reverse("memory-decisions-match"), {"next": page}, follow=True)
    assert "No task broker (Redis) answers" in shown.content.decode()
    assert counted(workspace, served_campaign) is None


def test_with_workers_the_api_queues_and_a_worker_counts(
    client, workspace, served_campaign, write_key, celery_workers
):
    celery_workers.start()

    response = client.post("/api/v1/decisions/match", **bearer(write_key))

    assert response.status_code == 202
    assert response.json() == {"queued": True, "named": None, "windowed": None, "resolved": None}
    wait_until(lambda: counted(workspace, served_campaign) is not None)
    assert counted(workspace, served_campaign).rows == campaign_decision_count_rows(
        campaign=served_campaign
    )


@pytest.mark.django_db
def test_a_matching_counts_again_the_campaigns_it_matched_and_leaves_the_others(workspace):
    offers = [message(workspace, f"m{i}", f"Offer {i}") for i in range(2)]
    spring = holdout_campaign(workspace, offers)
    autumn = campaign_create(
        workspace=workspace, actor=Actor.system(), slug="autumn", name="Autumn", messages=offers
    )
    decided = {
        campaign: decide(
            workspace,
            campaign,
            customer(workspace, f"c-{campaign.slug}"),
            PRIMER,
            offers[0],
            offers[0],
            goal=None,
            revenue=None,
            resolved=False,
        )
        for campaign in (spring, autumn)
    }
    Decision.objects.bulk_create(decided.values())
    decisions_match(workspace=workspace)  # both counted for the first time
    first = {c: counted(workspace, c).counted_at for c in decided}

    sent = decided[spring]
    Event.objects.create(
        workspace=workspace,
        customer_id=sent.customer_id,
        name=workspace.send_event,
        occurred_at=sent.decided_at + timedelta(hours=1),
        message=sent.message,
        message_key=sent.message.key,
        dedup_key="the-spring-send",
    )
    summary = decisions_match(workspace=workspace)

    assert summary.windowed == 1
    assert counted(workspace, spring).counted_at > first[spring]
    if connection.vendor == "postgresql":  # which campaigns matched comes from RETURNING
        assert counted(workspace, autumn).counted_at == first[autumn]
    else:  # the demo's SQLite does not say: every campaign is counted again
        assert counted(workspace, autumn).counted_at > first[autumn]
    assert [row[5] for row in counted(workspace, spring).rows] == [1]  # matched to a send


@pytest.mark.django_db
@pytest.mark.parametrize(
    "counting", ["", "x", "2026-13-01T00:00:00+00:00", "2026-01-01T00:00:00", "2026-01-01%00"]
)
def test_odd_counting_times_are_ignored_and_the_count_is_followed_per_workspace(
    client, member, workspace, other_workspace, served_campaign, counting
):
    client.force_login(member)
    page = client.get(reverse("campaign-uplift", args=["spring"]), {"counting": counting})
    assert page.status_code == 200 and 'id="uplift-counting"' not in page.content.decode()
    counted = reverse("campaign-uplift-counted", args=["spring"])
    assert client.get(counted, {"counting": counting}).json() == {
        "counted_at": None,
        "done": False,
    }
    decisions_match(workspace=workspace)
    answer = client.get(counted, {"counting": counting}).json()
    assert answer["done"] is True and answer["counted_at"]
    holdout_campaign(other_workspace, [message(other_workspace, "m0", "Offer 0")])
    client.force_login(member)  # a member of this workspace only
    other = reverse("campaign-uplift-counted", args=["nothing-here"])
    assert client.get(other).status_code == 404


@pytest.mark.django_db
def test_a_queued_count_is_followed_until_it_is_newer_than_the_request(
    client, member, workspace, served_campaign
):
    client.force_login(member)
    asked = timezone.now()
    query = {"counting": asked.isoformat()}
    shown = client.get(reverse("campaign-uplift", args=["spring"]), query).content.decode()
    assert 'id="uplift-counting"' in shown
    counted = reverse("campaign-uplift-counted", args=["spring"])
    assert client.get(counted, query).json()["done"] is False
    decisions_match(workspace=workspace, now=asked - timedelta(seconds=1))  # an older count
    assert client.get(counted, query).json()["done"] is False
    decisions_match(workspace=workspace, now=asked + timedelta(seconds=1))  # nothing new: kept
    assert client.get(counted, query).json()["done"] is False
    decisions_match(
        workspace=workspace, now=asked + timedelta(seconds=2), count_every_campaign=True
    )  # what the button asks for
    assert client.get(counted, query).json()["done"] is True
    shown = client.get(reverse("campaign-uplift", args=["spring"]), query).content.decode()
    assert 'id="uplift-counting"' not in shown
