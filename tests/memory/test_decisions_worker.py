"""End to end: a campaign's prompts exported by another process log decisions by holdout arm,
a real Celery worker matches the sends (each once) and resolves the goals, and the uplift API
and page state the planted numbers."""

import csv
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse

from campaigns.tenancy.services import api_key_create
from memory.decision_selectors import campaign_decision_clusters, campaign_decision_count_rows
from memory.models import Decision, Event, UpliftClusters, UpliftCounts
from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM, assign_arm
from memory.tasks import decisions_match, decisions_match_all
from tests.campaigns.prompt_support import customer, message
from tests.memory.decision_support import holdout_campaign, plant_next_best, succeeded_run
from tests.workers import ROOT, database_url_of_test_database

CUSTOMERS = 240
DAYS_AGO = timedelta(days=3)


def auth(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def export_in_another_process(tmp_path, workspace) -> dict[str, dict]:
    """Run export_prompts with two forked renderers; return its rows by customer id."""
    out = tmp_path / "prompts.csv"
    subprocess.run(
        [
            *(sys.executable, "manage.py", "export_prompts", "--workspace", workspace.slug),
            *("--campaign", "spring", "--format", "csv", "--out", str(out)),
            *("--processes", "2", "--chunk-size", "50"),
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url_of_test_database()},
        check=True,
        capture_output=True,
    )
    with out.open(newline="") as handle:
        return {row["customer_id"]: row for row in csv.DictReader(handle)}


def wait_until(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"not done within {timeout_s} s")


def plant_sends_and_goals(workspace, decisions: list[Decision]) -> dict[int, bool]:
    """One send of the served message 1 h after each decision (every fifth names it), a repeat
    of it for every seventh customer, and goals by a rule known per arm; return the goals."""
    events, goals = [], {}
    for i, decision in enumerate(decisions):
        sent = decision.decided_at + timedelta(hours=1)
        props = {"decision_id": decision.public_id} if i % 5 == 0 else {}
        events.append((decision, "Message Sent", sent, props, decision.message))
        if i % 7 == 0:  # the same message again: matched to nothing (the decision is taken)
            events.append(
                (decision, "Message Sent", sent + timedelta(hours=1), {}, decision.message)
            )
        primer_served = decision.message_id == decision.primer_message_id
        goal = {
            PRIMER: i % 3 != 0,
            RANDOM: i % 2 == 0 if primer_served else i % 4 == 0,
            NO_MEMORY: i % 2 == 0,
        }[decision.arm]
        goals[decision.pk] = goal
        if goal:
            events.append(
                (decision, "Order Completed", sent + timedelta(hours=3), {"revenue": 10}, None)
            )
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            customer_id=decision.customer_id,
            name=name,
            occurred_at=at,
            properties=props,
            message=sent_message,
            message_key=sent_message.key if sent_message else "",
            dedup_key=f"planted-{n}",
        )
        for n, (decision, name, at, props, sent_message) in enumerate(events)
    )
    return goals


@pytest.mark.worker
def test_it_logs_matches_and_measures_a_campaigns_decisions_end_to_end(
    workspace, other_workspace, celery_workers, tmp_path, client, make_user
):
    celery_workers.start()
    offers = [message(workspace, f"m{i}", f"Offer {i}") for i in range(4)]
    campaign = holdout_campaign(workspace, offers[:3], random=0.3, no_memory=0.2, window_h=24.0)
    people = [customer(workspace, f"c{i:03d}") for i in range(CUSTOMERS)]
    for person in people:
        plant_next_best(
            workspace,
            person,
            [(offers[3], 4.0), (offers[0], 2.0), (offers[1], 1.0), (offers[2], 0.0)],
        )
    plant_next_best(workspace, None, [(offers[1], 1.0), (offers[0], 0.5), (offers[2], 0.0)])
    succeeded_run(workspace)

    # Served by another process (the command, rendering in two forked processes): the arms are
    # the ones this process computes, and the prompt API's.
    exported = export_in_another_process(tmp_path, workspace)
    assert len(exported) == CUSTOMERS
    shares = campaign.holdout_shares
    for person in people:
        assert exported[person.external_id]["arm"] == assign_arm(
            workspace.pk, campaign.pk, person.pk, shares
        )
    _, read_key = api_key_create(workspace=workspace, scopes=["read"], name="reader")
    sample = people[0]
    answer = client.get(
        reverse("api-customer-prompt", args=[sample.external_id]) + "?campaign=spring",
        **auth(read_key),
    ).json()
    assert answer["arm"] == exported[sample.external_id]["arm"]
    Decision.objects.for_workspace(workspace).filter(public_id=answer["decision_id"]).delete()

    decisions = list(
        Decision.objects.for_workspace(workspace).select_related("message").order_by("customer_id")
    )
    assert len(decisions) == CUSTOMERS
    assert {d.public_id for d in decisions} == {row["decision_id"] for row in exported.values()}
    for decision in decisions:
        assert sum(decision.propensities) == pytest.approx(1.0, abs=1e-5)
        assert min(decision.propensities) >= 0.01 - 1e-6
        served_at = decision.eligible.index(decision.message_id)
        assert decision.propensity == pytest.approx(decision.propensities[served_at], abs=1e-6)
        assert set(decision.eligible) == {o.pk for o in offers[:3]}  # m3 is not the campaign's

    # Three days pass: the sends and goals happen, the windows close.
    Decision.objects.for_workspace(workspace).update(
        decided_at=F("decided_at") - DAYS_AGO, expires_at=F("expires_at") - DAYS_AGO
    )
    decisions = list(
        Decision.objects.for_workspace(workspace).select_related("message").order_by("customer_id")
    )
    goals = plant_sends_and_goals(workspace, decisions)

    decisions_match_all.delay()  # the beat's job: one matching task per workspace with decisions
    resolved = Decision.objects.for_workspace(workspace).filter(resolved_at__isnull=False)
    wait_until(lambda: resolved.count() == CUSTOMERS)
    first = {d.pk: (d.send_event_id, d.goal) for d in resolved}
    decisions_match.delay(workspace.pk).get(timeout=60)  # again: nothing changes
    again = {d.pk: (d.send_event_id, d.goal) for d in resolved.all()}
    assert again == first
    sends = [send for send, _ in first.values()]
    assert len(set(sends)) == CUSTOMERS  # matched sends counted once
    assert {pk: goal for pk, (_, goal) in first.items()} == goals
    named = resolved.filter(matched_by="decision_id").count()
    assert named == len(range(0, CUSTOMERS, 5))
    # The worker stored each arm's per-customer sums with the resolution, as summed now.
    stored = UpliftClusters.objects.for_workspace(workspace).filter(campaign=campaign)
    assert {row.arm: (row.customers, row.decisions, row.products) for row in stored} == {
        arm: (found.clusters.customers, found.decisions, found.clusters.products)
        for arm, found in campaign_decision_clusters(campaign=campaign).items()
    }

    # ... and counted the campaign's decisions, which the page and the API read.
    counted = UpliftCounts.objects.for_workspace(workspace).get(campaign=campaign)
    assert counted.rows == campaign_decision_count_rows(campaign=campaign)

    # The uplift, from the planted goals.
    def expected_rate(arm):
        mine = [d for d in decisions if d.arm == arm]
        return sum(goals[d.pk] for d in mine), len(mine)

    response = client.get(reverse("api-campaign-uplift", args=["spring"]), **auth(read_key))
    assert response.status_code == 200
    uplift = response.json()
    by_arm = {row["arm"]: row for row in uplift["arms"]}
    for arm in (PRIMER, RANDOM, NO_MEMORY):
        hits, n = expected_rate(arm)
        assert (by_arm[arm]["goals"], by_arm[arm]["sends"], by_arm[arm]["served"]) == (hits, n, n)
        assert by_arm[arm]["goal_rate"]["value"] == pytest.approx(hits / n)
        assert by_arm[arm]["revenue_per_send"]["value"] == pytest.approx(10 * hits / n)
    assert by_arm[RANDOM]["share"] == 0.3 and by_arm[PRIMER]["share"] == pytest.approx(0.5)
    against = {row["primer_against"]: row for row in uplift["comparisons"]}
    for arm in (RANDOM, NO_MEMORY):
        assert against[arm]["difference"]["value"] == pytest.approx(
            by_arm[PRIMER]["goal_rate"]["value"] - by_arm[arm]["goal_rate"]["value"]
        )
        assert against[arm]["minimum_detectable_effect"] > 0
    random_arm = [d for d in decisions if d.arm == RANDOM]
    matched = [d for d in random_arm if d.message_id == d.primer_message_id]
    off = uplift["off_policy"]
    assert (off["sends"], off["matches"]) == (len(random_arm), len(matched))
    assert off["snips"]["value"] == pytest.approx(sum(goals[d.pk] for d in matched) / len(matched))
    assert off["ips"]["value"] == pytest.approx(
        3 * sum(goals[d.pk] for d in matched) / len(random_arm)
    )

    # The page shows the same numbers; scopes and workspaces are kept apart.
    page_user = client.get(reverse("campaign-uplift", args=["spring"]))
    assert page_user.status_code == 302  # signed out: to the login
    _, write_key = api_key_create(workspace=workspace, scopes=["write"], name="writer")
    denied = client.get(reverse("api-campaign-uplift", args=["spring"]), **auth(write_key))
    assert denied.status_code == 403
    _, foreign_key = api_key_create(workspace=other_workspace, scopes=["read"], name="foreign")
    hidden = client.get(reverse("api-campaign-uplift", args=["spring"]), **auth(foreign_key))
    assert hidden.status_code == 404
    client.force_login(make_user("viewer", workspace=workspace, role="viewer"))
    page = client.get(reverse("campaign-uplift", args=["spring"])).content.decode()
    hits, n = expected_rate(PRIMER)
    assert f"{hits} of {n}" in page
    assert f"{off['snips']['value']:.3f}" in page
    assert (
        reverse("campaign-uplift", args=["spring"])
        in client.get(reverse("campaign", args=["spring"])).content.decode()
    )
