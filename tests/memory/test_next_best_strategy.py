"""Guardrails and overrides in the stored next best: applied before exploration, each exclusion
named, and "nothing may be sent now" said plainly."""

import json
from datetime import UTC, datetime, time, timedelta

import pytest

from campaigns.models import Label, Message
from campaigns.strategy.services import guardrail_create, override_create
from campaigns.tenancy.changes import Actor
from campaigns.tenancy.services import api_key_create
from memory.models import Customer, Event
from memory.next_best import next_best_for
from tests.memory.engine_fixtures import load_synthetic, recompute_here

ANNA = Actor.system("anna")


@pytest.fixture
def stored(workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace)


def _label_on_top(workspace, external_id):
    """Return a label carried by some but not all of the customer's stored offers."""
    keys = [
        offer.key for offer in next_best_for(workspace=workspace, external_id=external_id).offers
    ]
    for label in Label.objects.for_workspace(workspace).order_by("label_set__slug", "slug"):
        carrying = set(label.messages.values_list("key", flat=True))
        if carrying & set(keys[:3]) and set(keys) - carrying:
            return label, carrying
    raise AssertionError("the synthetic catalogue has no such label")


def _gold_and_basic(workspace):
    customers = Customer.objects.for_workspace(workspace).order_by("external_id")
    gold = next(c for c in customers if c.traits.get("plan") == "gold")
    basic = next(c for c in customers if c.traits.get("plan") == "basic")
    return gold.external_id, basic.external_id


def test_a_segments_never_is_excluded_before_exploration_whatever_the_seed(workspace, stored):
    gold, basic = _gold_and_basic(workspace)
    label, carrying = _label_on_top(workspace, gold)
    override_create(
        workspace=workspace,
        actor=ANNA,
        segment={"all": [{"trait": "plan", "equals": "gold"}]},
        label=label,
        action="pin",
        value=0.0,
    )
    for seed in range(16):
        answer = next_best_for(
            workspace=workspace, external_id=gold, explore=True, seed=seed, limit=20
        )
        assert answer.offers and not {offer.key for offer in answer.offers} & carrying
        assert answer.excluded and {item["key"] for item in answer.excluded} <= carrying
        assert all(item["source"] == "override" for item in answer.excluded)
        assert answer.excluded[0]["reason"].startswith(f"never {label.slug} (set by anna on ")
    # Customers outside the segment keep being offered them.
    offered = set()
    for seed in range(16):
        answer = next_best_for(
            workspace=workspace, external_id=basic, explore=True, seed=seed, limit=20
        )
        offered |= {offer.key for offer in answer.offers}
        assert answer.excluded == []
    assert offered & carrying


def test_a_channel_cap_reached_today_excludes_its_messages_with_the_reason(workspace, stored):
    gold, _ = _gold_and_basic(workspace)
    label, carrying = _label_on_top(workspace, gold)
    guardrail_create(
        workspace=workspace,
        actor=ANNA,
        name="One a day",
        kind="frequency_cap",
        label=label,
        limit=1,
        period="day",
    )
    now = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
    assert not next_best_for(workspace=workspace, external_id=gold, now=now).excluded
    message = Message.objects.for_workspace(workspace).get(key=sorted(carrying)[0])
    Event.objects.create(
        workspace=workspace,
        customer=Customer.objects.for_workspace(workspace).get(external_id=gold),
        name=workspace.send_event,
        occurred_at=now - timedelta(hours=2),
        message=message,
        message_key=message.key,
        dedup_key="sent-today",
    )
    answer = next_best_for(workspace=workspace, external_id=gold, now=now, limit=20)
    assert not {offer.key for offer in answer.offers} & carrying
    reasons = {item["reason"] for item in answer.excluded}
    assert reasons == {f"at most 1 {label.phrase} messages a day: 1 sent since midnight"}
    assert {item["rule"] for item in answer.excluded} == {"One a day"}


def test_quiet_hours_mean_nothing_may_be_sent_now(workspace, stored):
    workspace.time_zone = "Europe/Paris"
    workspace.save()
    guardrail_create(
        workspace=workspace,
        actor=ANNA,
        name="Nights",
        kind="quiet_hours",
        quiet_start=time(22),
        quiet_end=time(8),
    )
    night = datetime(2026, 12, 10, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    answer = next_best_for(workspace=workspace, external_id="c1", now=night, explore=True)
    assert answer.offers == []
    assert answer.nothing_now == (
        "Nothing may be sent now: quiet hours 22:00-08:00 (Europe/Paris): it is 23:30 there "
        "(Nights)."
    )
    day = night.replace(hour=10)
    assert next_best_for(workspace=workspace, external_id="c1", now=day).offers


def test_a_raise_moves_the_stored_score_and_can_reorder(workspace, stored):
    gold, _ = _gold_and_basic(workspace)
    before = {
        o.key: o.score
        for o in next_best_for(workspace=workspace, external_id=gold, limit=20).offers
    }
    label, carrying = _label_on_top(workspace, gold)
    override_create(
        workspace=workspace,
        actor=ANNA,
        customer_external_id=gold,
        label=label,
        action="lower",
        value=1.0,
    )
    after = next_best_for(workspace=workspace, external_id=gold, limit=20).offers
    for offer in after:
        if offer.key in carrying:
            assert offer.score < before[offer.key] and offer.override_shift < 0
        else:
            assert offer.score == pytest.approx(before[offer.key])
    assert [o.score for o in after] == sorted((o.score for o in after), reverse=True)


def test_the_customer_page_shows_exclusions_and_provenance(member_client, workspace, stored):
    gold, _ = _gold_and_basic(workspace)
    label, carrying = _label_on_top(workspace, gold)
    override_create(
        workspace=workspace,
        actor=Actor.system("anna"),
        segment={"all": [{"trait": "plan", "equals": "gold"}]},
        label=label,
        action="pin",
        value=0.0,
    )
    page = member_client.get(f"/customers/{gold}/")
    html = page.content.decode()
    assert not {offer.key for offer in page.context["ranking"]} & carrying
    excluded = html[html.index('id="excluded"') :]
    assert f"never {label.slug}" in excluded and "set by anna on" in excluded
    overrides = html[html.index('id="overrides"') : html.index('id="habituation"')]
    assert "never" in overrides and 'for plan = "gold"' in overrides.replace("&quot;", '"')
    learned = page.context["memory"]["weights"]
    provenances = {row["provenance"] for rows in learned.values() for row in rows}
    assert {"learned", "marketer"} <= provenances


def test_the_weights_export_carries_each_weights_provenance(client, workspace, stored):
    gold, basic = _gold_and_basic(workspace)
    label, _ = _label_on_top(workspace, gold)
    override_create(
        workspace=workspace,
        actor=Actor.system("anna"),
        customer_external_id=gold,
        label=label,
        action="pin",
        value=0.7,
    )
    _, key = api_key_create(workspace=workspace, scopes=["read"], name="export")
    response = client.get(
        "/api/v1/memory/export?kind=weights&format=jsonl", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 200
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    mine = [r for r in rows if r["customer"] == gold and r["label"] == label.slug]
    assert len(mine) == 1
    assert mine[0]["provenance"] == "marketer" and mine[0]["effective_weight"] == 0.7
    assert mine[0]["set_by"] == "anna" and mine[0]["set_at"]
    others = [r for r in rows if not (r["customer"] == gold and r["label"] == label.slug)]
    # Dense synthetic sends: every stored weight is learned from the customer's own sends.
    assert {r["provenance"] for r in others} == {"learned"}
    assert all(r["effective_weight"] == r["weight"] and r["set_by"] == "" for r in others)
    assert any(r["customer"] == basic for r in others)


def test_the_next_best_api_names_each_exclusion(client, workspace, stored):
    gold, _ = _gold_and_basic(workspace)
    label, carrying = _label_on_top(workspace, gold)
    override_create(
        workspace=workspace,
        actor=ANNA,
        customer_external_id=gold,
        label=label,
        action="pin",
        value=0.0,
        note="asked us to",
    )
    _, key = api_key_create(workspace=workspace, scopes=["read"], name="crm")
    response = client.get(
        f"/api/v1/customers/{gold}/next-best?explore=1&seed=3&limit=20",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["offers"] and not {offer["key"] for offer in body["offers"]} & carrying
    assert {item["key"] for item in body["excluded"]} <= carrying and body["excluded"]
    item = body["excluded"][0]
    assert item["source"] == "override" and item["rule"] == f"never {label.slug}"
    assert item["reason"].startswith(f"never {label.slug} (set by anna on ")
