"""A campaign's uplift counts each customer once: the per-customer aggregate in the database
equals the plain statement of it, and a customer decided for many times widens the intervals."""

import random
from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from campaigns.tenancy.changes import Actor
from memory.decision_matching import decisions_match, uplift_store
from memory.decision_selectors import (
    campaign_decision_clusters,
    campaign_decision_count_rows,
    campaign_uplift,
    decision_counts_fold,
)
from memory.models import Decision, UpliftClusters, UpliftCounts
from memory.privacy import customer_erase
from memory.scoring.exploration import NO_MEMORY, PRIMER, RANDOM
from memory.scoring.uplift import clusters_from_totals, uplift_of, wilson_interval
from tests.campaigns.prompt_support import customer, message
from tests.memory.decision_support import decide, holdout_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign_with_repeats(workspace):
    """Customers in each arm decided for 1 to 6 times, their outcomes alike within a customer
    (as when the same person keeps buying or not); some decisions unresolved."""
    offers = [message(workspace, f"m{i}", f"Offer {i}") for i in range(2)]
    campaign = holdout_campaign(workspace, offers, random=0.3, no_memory=0.2)
    rng = random.Random(7)
    rows = []
    for i in range(90):
        arm = (PRIMER, RANDOM, NO_MEMORY)[i % 3]
        person = customer(workspace, f"c{i}")
        buys = rng.random() < (0.6 if arm == PRIMER else 0.4)
        for _ in range(rng.randint(1, 6)):
            served = offers[rng.randint(0, 1)]
            rows.append(
                decide(
                    workspace,
                    campaign,
                    person,
                    arm,
                    served,
                    offers[0],
                    goal=buys,
                    revenue=rng.choice([None, 12.5]) if buys else None,
                    resolved=rng.random() < 0.9,
                )
            )
    Decision.objects.bulk_create(rows)
    return campaign


def test_the_database_sums_each_customers_totals_as_the_plain_statement_does(
    workspace, campaign_with_repeats
):
    found = campaign_decision_clusters(campaign=campaign_with_repeats)
    expected = {}
    for arm in (PRIMER, RANDOM, NO_MEMORY):
        totals: dict[int, dict[str, float]] = {}
        for d in Decision.objects.for_workspace(workspace).filter(
            campaign=campaign_with_repeats, arm=arm, resolved_at__isnull=False
        ):
            row = totals.setdefault(d.customer_id, dict.fromkeys("nyvaw", 0.0))
            weight = d.eligible_count if d.message_id == d.primer_message_id else 0
            row["n"] += 1
            row["y"] += float(d.goal)
            row["v"] += d.revenue or 0.0
            row["w"] += weight
            row["a"] += weight * float(d.goal)
        expected[arm] = clusters_from_totals(list(totals.values()))
    assert set(found) == set(expected)
    for arm, clusters in expected.items():
        assert found[arm].clusters.customers == clusters.customers
        assert found[arm].clusters.products == pytest.approx(clusters.products)
        resolved = Decision.objects.for_workspace(workspace).filter(
            campaign=campaign_with_repeats, arm=arm, resolved_at__isnull=False
        )
        assert found[arm].decisions == resolved.count()


def test_the_uplift_counts_customers_not_decisions(
    client, read_key, workspace, campaign_with_repeats
):
    uplift_store(workspace=workspace, campaign_ids={campaign_with_repeats.pk})
    result = campaign_uplift(campaign=campaign_with_repeats).uplift
    primer = next(arm for arm in result.arms if arm.arm == PRIMER)
    # Wider than the binomial interval of the decisions taken as independent.
    naive = wilson_interval(primer.goals, primer.sends)
    assert primer.rate.high - primer.rate.low > 1.5 * (naive.high - naive.low)
    response = client.get(
        reverse("api-campaign-uplift", args=["spring"]),
        HTTP_AUTHORIZATION=f"Bearer {read_key}",
    )
    assert response.status_code == 200
    by_arm = {row["arm"]: row for row in response.json()["arms"]}
    assert by_arm[PRIMER]["goal_rate"]["low"] == pytest.approx(primer.rate.low)


def test_the_page_reads_the_stored_sums_while_they_cover_the_counts_and_sums_anew_if_not(
    workspace, campaign_with_repeats
):
    campaign = campaign_with_repeats
    live = campaign_uplift_live(campaign)
    uplift_store(workspace=workspace, campaign_ids={campaign.pk})
    assert campaign_uplift(campaign=campaign).uplift == live
    # Stored sums are what the page reads: make them claim far less spread than the truth.
    UpliftClusters.objects.for_workspace(workspace).update(products={})
    narrowed = campaign_uplift(campaign=campaign).uplift
    primer = next(arm for arm in narrowed.arms if arm.arm == PRIMER)
    assert (primer.rate.low, primer.rate.high) == pytest.approx(
        tuple(getattr(wilson_interval(primer.goals, primer.sends), b) for b in ("low", "high"))
    )
    # Once they no longer cover the resolved decisions counted, the page sums them anew.
    UpliftClusters.objects.for_workspace(workspace).filter(arm=PRIMER).update(
        decisions=F("decisions") - 1
    )
    assert campaign_uplift(campaign=campaign).uplift == live


def campaign_uplift_live(campaign):
    _, groups = decision_counts_fold(campaign_decision_count_rows(campaign=campaign))
    clusters = {arm: c.clusters for arm, c in campaign_decision_clusters(campaign=campaign).items()}
    return uplift_of(groups, clusters=clusters)


def test_erasing_a_customer_stores_their_campaigns_counts_and_sums_again(
    workspace, campaign_with_repeats
):
    campaign = campaign_with_repeats
    uplift_store(workspace=workspace, campaign_ids={campaign.pk})
    counted = UpliftCounts.objects.for_workspace(workspace).get(campaign=campaign)
    decided = Decision.objects.for_workspace(workspace).filter(campaign=campaign)
    person = decided.filter(resolved_at__isnull=False).first().customer
    theirs = decided.filter(customer=person).count()

    customer_erase(workspace=workspace, external_id=person.external_id, actor=Actor.system())

    stored = UpliftClusters.objects.for_workspace(workspace).filter(campaign=campaign)
    assert sum(row.decisions for row in stored) == decided.filter(resolved_at__isnull=False).count()
    recounted = UpliftCounts.objects.for_workspace(workspace).get(campaign=campaign)
    assert recounted.rows == campaign_decision_count_rows(campaign=campaign)
    served = sum(row[4] for row in recounted.rows)
    assert served == decided.count() == sum(row[4] for row in counted.rows) - theirs


def test_one_pass_counts_the_funnel_and_the_groups_as_plain_counts_do(
    workspace, campaign_with_repeats
):
    campaign = campaign_with_repeats
    decisions = Decision.objects.for_workspace(workspace).filter(campaign=campaign)
    # Some matched to a send and not yet resolved, as between a send and its window's end.
    for n, pending in enumerate(decisions.filter(resolved_at__isnull=True)[:5]):
        pending.send_event_id = 10_000 + n
        pending.save(update_fields=["send_event_id"])

    funnel, groups = decision_counts_fold(campaign_decision_count_rows(campaign=campaign))

    for row in funnel:
        mine = decisions.filter(arm=row.arm)
        assert (row.served, row.matched, row.resolved) == (
            mine.count(),
            mine.filter(send_event_id__isnull=False).count(),
            mine.filter(resolved_at__isnull=False).count(),
        )
    assert sum(row.served for row in funnel) == decisions.count() > 0
    assert sum(g.sends for g in groups) == decisions.filter(resolved_at__isnull=False).count()
    assert sum(g.goals for g in groups) == decisions.filter(goal=True).count()


def test_the_uplift_is_what_the_matching_counted_and_it_counts_again_what_changed(
    client, read_key, make_user, workspace, campaign_with_repeats
):
    campaign = campaign_with_repeats
    url = reverse("api-campaign-uplift", args=["spring"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {read_key}"}
    not_yet = client.get(url, **auth).json()
    assert not_yet["counted_at"] is None
    assert [row["served"] for row in not_yet["arms"]] == [0, 0, 0]
    client.force_login(make_user("viewer", workspace=workspace, role="viewer"))
    page = reverse("campaign-uplift", args=["spring"])
    assert "Not counted yet" in client.get(page).content.decode()

    decisions_match(workspace=workspace)
    counted = campaign_uplift(campaign=campaign)
    funnel, _ = decision_counts_fold(campaign_decision_count_rows(campaign=campaign))
    assert counted.counted_at is not None
    assert (counted.funnel, counted.uplift) == (funnel, campaign_uplift_live(campaign))
    answer = client.get(url, **auth).json()
    assert answer["counted_at"] is not None
    assert [row["served"] for row in answer["arms"]] == [row.served for row in funnel]
    shown = client.get(page).content.decode()
    assert "Counted " in shown and "Not counted yet" not in shown
    primer = next(row for row in funnel if row.arm == PRIMER)
    assert f"<td>{primer.served}</td><td>{primer.matched}</td>" in shown

    # Nothing served or matched since: the next matching leaves the count as it was.
    decisions_match(workspace=workspace)
    assert campaign_uplift(campaign=campaign).counted_at == counted.counted_at

    # One more decision, served just before the count but stored after it: the next matching
    # counts the campaign again.
    served = Decision.objects.for_workspace(workspace).filter(campaign=campaign).first()
    fresh = decide(
        workspace,
        campaign,
        served.customer,
        served.arm,
        served.message,
        served.primer_message,
        goal=None,
        revenue=None,
        resolved=False,
    )
    fresh.decided_at = counted.counted_at - timedelta(seconds=30)
    fresh.expires_at = timezone.now() + timedelta(days=1)
    fresh.save()
    assert campaign_uplift(campaign=campaign).funnel == funnel  # read from the count
    decisions_match(workspace=workspace)
    recounted = campaign_uplift(campaign=campaign)
    assert recounted.counted_at > counted.counted_at
    assert sum(row.served for row in recounted.funnel) == sum(row.served for row in funnel) + 1
