"""A campaign's sends and credited goals: counted by a task, read from the stored count."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.catalogue.campaign_selectors import campaign_numbers_stored, campaigns_to_count
from campaigns.catalogue.campaign_services import (
    campaign_create,
    campaign_tally_count,
    campaign_tally_request,
    campaign_update,
)
from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import CampaignTally, Message
from campaigns.tasks import campaign_tallies_count_task
from campaigns.tenancy.changes import Actor
from config.celery import app
from memory.models import Customer, Event

ACTOR = Actor.system("test")


@pytest.fixture
def in_process_tasks():
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def spring(workspace):
    messages_upsert(
        workspace=workspace,
        specs=[MessageSpec(key="bogo", subject="Buy one", labels={"value_proposition": ["bogo"]})],
    )
    customer = Customer.objects.create(workspace=workspace, external_id="c1")
    bogo = Message.objects.for_workspace(workspace).get(key="bogo")
    start = timezone.now() - timedelta(days=10)
    for name, hours, message in (
        ("Message Sent", 0, bogo),
        ("Order Completed", 20, None),  # within 24 h: credited
        ("Message Sent", 100, bogo),
        ("Order Completed", 130, None),  # 30 h later: not credited
    ):
        Event.objects.create(
            workspace=workspace,
            customer=customer,
            name=name,
            occurred_at=start + timedelta(hours=hours),
            message=message,
            dedup_key=f"{name}-{hours}",
        )
    return campaign_create(
        workspace=workspace,
        actor=ACTOR,
        slug="spring",
        name="Spring",
        messages=[bogo],
        attribution_window_h=24,
    )


def test_the_page_reads_the_stored_count_without_touching_the_events(member_client, spring):
    campaign_tally_count(campaign_id=spring.pk)
    with CaptureQueriesContext(connection) as queries:
        page = member_client.get(reverse("campaign", args=["spring"]))
    assert page.status_code == 200
    assert page.context["tally"].numbers.sends == 2
    assert page.context["tally"].numbers.credited == 1
    assert page.context["tally"].current
    assert not any('"memory_event"' in query["sql"] for query in queries.captured_queries)
    assert "Counted" in page.content.decode()


def test_an_edit_makes_the_count_stale_and_the_page_recounts_it(
    member_client, spring, in_process_tasks
):
    campaign_tally_count(campaign_id=spring.pk)
    widened = campaign_update(
        workspace=spring.workspace,
        actor=ACTOR,
        campaign=spring,
        expected_version=None,
        changes={"attribution_window_h": 48},
    )
    assert not campaign_numbers_stored(campaign=widened).current
    page = member_client.get(reverse("campaign", args=["spring"]))
    assert page.context["tally"].current
    assert page.context["tally"].numbers.credited == 2


def test_without_a_worker_the_page_says_it_is_counting_and_asks_once(
    member_client, spring, settings
):
    if app.conf.task_always_eager:
        pytest.skip("tasks run in-process here: nothing waits for a worker")
    page = member_client.get(reverse("campaign", args=["spring"]))
    assert page.context["tally"].numbers is None
    assert "Counting its sends" in page.content.decode()
    # A reload while the count is pending asks for no second one.
    assert not campaign_tally_request(campaign=spring)
    settings.PRIMER_TALLY_RETRY_S = 1
    CampaignTally.objects.for_workspace(spring.workspace).filter(campaign=spring).update(
        requested_at=timezone.now() - timedelta(seconds=5)
    )
    assert campaign_tally_request(campaign=spring)


def test_a_recompute_recounts_only_the_campaigns_due(spring, workspace):
    autumn = campaign_create(
        workspace=workspace, actor=ACTOR, slug="autumn", name="Autumn", messages=[]
    )
    assert set(campaigns_to_count(workspace_id=workspace.pk)) == {spring.pk, autumn.pk}
    assert campaign_tallies_count_task(workspace.pk) == 2
    assert campaigns_to_count(workspace_id=workspace.pk) == []
    assert campaign_numbers_stored(campaign=spring).numbers.sends == 2
    assert campaign_numbers_stored(campaign=autumn).numbers.sends == 0


def test_counts_stay_in_their_workspace(spring, other_workspace):
    campaign_tally_count(campaign_id=spring.pk)
    assert campaigns_to_count(workspace_id=other_workspace.pk) == []
    assert CampaignTally.objects.for_workspace(other_workspace).count() == 0
