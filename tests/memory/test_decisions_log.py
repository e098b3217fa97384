"""Served decisions: logged in one statement, propensities summing to one, matched to sends once."""

from datetime import timedelta

import polars as pl
import pytest
from django.utils import timezone

from campaigns.catalogue.campaign_services import campaign_create
from campaigns.tenancy.changes import Actor
from memory.decision_matching import decisions_match
from memory.decisions import CANDIDATE_SCHEMA, decisions_serve
from memory.models import Decision, RecomputeRun
from memory.signals import memory_recomputed
from tests.campaigns.prompt_support import MEMORY_AT, customer, event, message


def candidates(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CANDIDATE_SCHEMA, orient="row")


@pytest.fixture
def catalogue(workspace):
    return [message(workspace, f"m{i}", f"Message {i}") for i in range(4)]


def test_it_logs_one_decision_per_customer_with_propensities_summing_to_one(workspace, catalogue):
    people = [customer(workspace, f"c{i}") for i in range(30)]
    rows = [
        (person.pk, m.pk, float(score), 0.8)
        for person in people
        for m, score in zip(catalogue, (0.5, 0.2, 0.0, -1.0), strict=True)
    ]
    served = decisions_serve(workspace=workspace, candidates=candidates(rows), source="api")
    assert len(served) == 30
    for item in served:
        assert sum(item.propensities) == pytest.approx(1.0)
        assert min(item.propensities) >= 0.01
        assert item.eligible[0] == catalogue[0].pk  # best first
        assert item.primer_message_id == catalogue[0].pk
        assert item.propensity == item.propensities[item.eligible.index(item.message_id)]
    stored = Decision.objects.for_workspace(workspace)
    assert stored.count() == 30
    one = stored.get(public_id=served[0].public_id)
    assert (one.arm, one.policy, one.source) == ("", "thompson", "api")
    assert one.eligible == [m.pk for m in catalogue]
    assert one.expires_at - one.decided_at == timedelta(hours=workspace.attribution_window_h)


def test_a_campaign_exploring_a_share_serves_its_best_and_logs_the_propensities(
    workspace, catalogue
):
    campaign = campaign_create(
        workspace=workspace,
        actor=Actor.system("t"),
        slug="eps",
        name="Epsilon",
        messages=catalogue,
        exploration="epsilon",
        explore_share=0.2,
    )
    people = [customer(workspace, f"e{i}") for i in range(400)]
    rows = [
        (person.pk, m.pk, float(score), 0.8)
        for person in people
        for m, score in zip(catalogue, (0.5, 0.2, 0.0, -1.0), strict=True)
    ]
    served = decisions_serve(
        workspace=workspace, candidates=candidates(rows), source="api", campaign=campaign
    )
    assert {item.policy for item in served} == {"epsilon"}
    assert all(item.propensities == pytest.approx([0.85, 0.05, 0.05, 0.05]) for item in served)
    # Served as the propensities say: the best about 85% of the time (400 draws: +-7 points).
    best = sum(item.message_id == catalogue[0].pk for item in served) / len(served)
    assert 0.78 <= best <= 0.92
    assert Decision.objects.for_workspace(workspace).filter(policy="epsilon").count() == 400


def test_it_matches_sends_counted_once(workspace, catalogue):
    first, second = customer(workspace, "a"), customer(workspace, "b")
    decided = MEMORY_AT - timedelta(hours=100)
    rows = [(first.pk, catalogue[0].pk, 1.0, 0.0), (second.pk, catalogue[1].pk, 1.0, 0.0)]
    # Two decisions for the first customer a minute apart, one for the second.
    early = decisions_serve(
        workspace=workspace, candidates=candidates(rows[:1]), source="api", decided_at=decided
    )
    late = decisions_serve(
        workspace=workspace,
        candidates=candidates(rows[:1]),
        source="api",
        decided_at=decided + timedelta(minutes=1),
    )
    named = decisions_serve(
        workspace=workspace, candidates=candidates(rows[1:]), source="api", decided_at=decided
    )
    # One send of the recommended message to the first customer: it goes to one decision only.
    send = event(first, "Message Sent", 99, message=catalogue[0])
    event(first, "Order Completed", 98, properties={"revenue": 12.5})
    # The second customer's send names its decision; a send of another message is not matched.
    named_send = event(
        second,
        "Message Sent",
        99,
        message=catalogue[1],
        properties={"decision_id": named[0].public_id},
    )
    event(second, "Message Sent", 98, message=catalogue[2])
    summary = decisions_match(workspace=workspace, now=MEMORY_AT)
    assert (summary.named, summary.windowed, summary.resolved) == (1, 1, 2)
    again = decisions_match(workspace=workspace, now=MEMORY_AT)
    assert (again.named, again.windowed) == (0, 0)
    stored = {d.public_id: d for d in Decision.objects.for_workspace(workspace)}
    assert stored[late[0].public_id].send_event_id == send.pk  # the latest decision before it
    assert stored[early[0].public_id].send_event_id is None
    assert stored[named[0].public_id].send_event_id == named_send.pk
    assert stored[named[0].public_id].matched_by == "decision_id"
    resolved = stored[late[0].public_id]
    assert (resolved.goal, resolved.revenue) == (True, 12.5)
    assert stored[named[0].public_id].goal is False


def test_it_uses_the_campaign_window(workspace, catalogue):
    campaign = campaign_create(
        workspace=workspace,
        actor=Actor.system(),
        slug="spring",
        name="Spring",
        attribution_window_h=2.0,
    )
    person = customer(workspace, "a")
    decisions_serve(
        workspace=workspace,
        candidates=candidates([(person.pk, catalogue[0].pk, 1.0, 0.0)]),
        source="prompt",
        campaign=campaign,
        decided_at=MEMORY_AT - timedelta(hours=10),
    )
    event(person, "Message Sent", 7, message=catalogue[0])  # 3 h after: outside the 2 h window
    assert decisions_match(workspace=workspace, now=MEMORY_AT).windowed == 0


def test_it_matches_sends_after_each_recompute(
    workspace, catalogue, eager_tasks, django_capture_on_commit_callbacks
):
    person = customer(workspace, "a")
    decisions_serve(
        workspace=workspace,
        candidates=candidates([(person.pk, catalogue[0].pk, 1.0, 0.0)]),
        source="api",
        decided_at=timezone.now() - timedelta(hours=2),
    )
    event(person, "Message Sent", 1, message=catalogue[0], at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        memory_recomputed.send(sender=RecomputeRun, workspace_id=workspace.pk, run_id=1)
    assert Decision.objects.for_workspace(workspace).get().send_event_id is not None
