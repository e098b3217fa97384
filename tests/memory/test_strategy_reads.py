"""Guardrails and overrides read for one customer: their moment, the rules in force, and the
next best messages they allow (exploration included)."""

from datetime import UTC, datetime, timedelta

import pytest

from campaigns.models import Guardrail, Label, Message, Override
from campaigns.strategy.services import guardrail_create, override_create
from campaigns.tenancy.changes import Actor
from memory.models import Customer, Event
from memory.strategy import (
    customer_weights,
    next_best_with_strategy,
    strategy_decide,
)
from tests.campaigns.strategy_support import strategy_catalogue  # noqa: F401
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

ANNA = Actor.system("anna")
# Thursday 10 December 2026, 15:00 UTC.
NOW = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)


def send(workspace, customer, message, at, name=None):
    return Event.objects.create(
        workspace=workspace,
        customer=customer,
        name=name or workspace.send_event,
        occurred_at=at,
        message=message,
        message_key=message.key if message else "",
        dedup_key=f"{customer.pk}:{at.isoformat()}:{name}",
    )


def customer(workspace, external_id):
    return Customer.objects.for_workspace(workspace).get(external_id=external_id)


def allowed_keys(workspace, decision):
    return sorted(
        Message.objects.for_workspace(workspace)
        .filter(pk__in=decision.allowed)
        .values_list("key", flat=True)
    )


def test_a_weekly_label_cap_counts_only_this_customers_sends_this_week(
    workspace, strategy_catalogue
):
    c1, c2 = customer(workspace, "c-1"), customer(workspace, "c-2")
    spring = strategy_catalogue["spring"]
    guardrail_create(
        workspace=workspace,
        actor=ANNA,
        name="Two discounts a week",
        kind="frequency_cap",
        label=strategy_catalogue["discount"],
        limit=2,
        period="week",
    )
    send(workspace, c1, spring, NOW - timedelta(days=2))
    send(workspace, c1, spring, NOW - timedelta(days=8))  # last week
    send(workspace, c2, spring, NOW - timedelta(days=1))
    send(workspace, c2, spring, NOW - timedelta(hours=1))
    one = strategy_decide(workspace=workspace, customer=c1, now=NOW)
    assert allowed_keys(workspace, one) == ["hurry", "spring"]
    two = strategy_decide(workspace=workspace, customer=c2, now=NOW)
    assert allowed_keys(workspace, two) == ["hurry"]
    (excluded,) = two.excluded
    assert excluded.key == "spring" and excluded.rule_name == "Two discounts a week"
    assert excluded.reason == "at most 2 Discount messages a week: 2 sent since Mon 7 Dec"


def test_a_wait_after_a_purchase_and_quiet_hours_in_the_workspace_zone(
    workspace, strategy_catalogue
):
    c1 = customer(workspace, "c-1")
    guardrail_create(
        workspace=workspace,
        actor=ANNA,
        name="No discount right after a purchase",
        kind="after_event",
        label=strategy_catalogue["discount"],
        event_name="Order Completed",
        hours=24,
    )
    send(workspace, c1, None, NOW - timedelta(hours=5), name="Order Completed")
    decision = strategy_decide(workspace=workspace, customer=c1, now=NOW)
    assert allowed_keys(workspace, decision) == ["hurry"]
    assert decision.excluded[0].reason.endswith("the last one was 5 h ago")

    workspace.time_zone = "Asia/Tokyo"  # 15:00 UTC is midnight there
    workspace.save()
    guardrail_create(
        workspace=workspace,
        actor=ANNA,
        name="Nights",
        kind="quiet_hours",
        quiet_start=datetime(2000, 1, 1, 22).time(),
        quiet_end=datetime(2000, 1, 1, 7).time(),
    )
    quiet = strategy_decide(workspace=workspace, customer=c1, now=NOW)
    assert quiet.allowed == {}
    assert quiet.nothing_now.startswith("Nothing may be sent now: quiet hours 22:00-07:00")


def test_overrides_hold_for_their_segment_or_customer_until_they_end(workspace, strategy_catalogue):
    urgency = strategy_catalogue["urgency"]
    c1, c2 = customer(workspace, "c-1"), customer(workspace, "c-2")
    override_create(
        workspace=workspace,
        actor=ANNA,
        segment={"all": [{"trait": "plan", "equals": "pro"}]},
        label=urgency,
        action="pin",
        value=0.0,
    )
    pro = strategy_decide(workspace=workspace, customer=c1, now=NOW)
    assert allowed_keys(workspace, pro) == ["spring"]
    (excluded,) = pro.excluded
    assert excluded.source == "override"
    assert excluded.reason.startswith("never urgency (set by anna on ")
    assert excluded.reason.endswith('for plan = "pro")')
    free = strategy_decide(workspace=workspace, customer=c2, now=NOW)
    assert allowed_keys(workspace, free) == ["hurry", "spring"]

    override_create(
        workspace=workspace,
        actor=ANNA,
        customer_external_id="c-2",
        label=urgency,
        action="raise",
        value=0.5,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    weights = customer_weights(workspace=workspace, customer=c2)
    assert weights[urgency.pk].provenance == "marketer"
    assert weights[urgency.pk].override.scope == "customer"
    later = datetime.now(UTC) + timedelta(days=2)
    expired = customer_weights(workspace=workspace, customer=c2, now=later).get(urgency.pk)
    assert expired is None or expired.override is None
    Override.objects.for_workspace(workspace).update(active=False)
    assert strategy_decide(workspace=workspace, customer=c1, now=NOW).excluded == []


def _labelled(workspace, message_keys):
    return {
        label
        for (label,) in Message.labels.through.objects.filter(
            message__workspace=workspace, message__key__in=message_keys
        ).values_list("label__slug")
    }


def test_an_excluded_message_is_never_explored_whatever_the_seed(workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    someone = Customer.objects.for_workspace(workspace).order_by("external_id").first()
    label = (
        Label.objects.for_workspace(workspace)
        .filter(messages__isnull=False)
        .order_by("label_set__slug", "slug")
        .first()
    )
    carrying = set(label.messages.values_list("key", flat=True))
    seen_before = set()
    for seed in range(12):
        rows, _ = next_best_with_strategy(
            workspace=workspace, customer=someone, explore=True, seed=seed, limit=3, now=AS_OF
        )
        seen_before |= {row["key"] for row in rows}
    assert seen_before & carrying  # without the override, exploration offers them

    override_create(
        workspace=workspace,
        actor=ANNA,
        customer_external_id=someone.external_id,
        label=label,
        action="pin",
        value=0.0,
    )
    for seed in range(12):
        rows, decision = next_best_with_strategy(
            workspace=workspace, customer=someone, explore=True, seed=seed, limit=50, now=AS_OF
        )
        assert rows and not {row["key"] for row in rows} & carrying
        assert {item.key for item in decision.excluded} == carrying


def test_nothing_may_be_sent_when_every_message_is_capped(workspace, strategy_catalogue):
    c1 = customer(workspace, "c-1")
    guardrail_create(
        workspace=workspace,
        actor=ANNA,
        name="None today",
        kind="frequency_cap",
        limit=0,
        period="day",
    )
    decision = strategy_decide(workspace=workspace, customer=c1, now=NOW)
    assert decision.allowed == {}
    assert decision.nothing_now == (
        "Nothing may be sent now: at most 0 messages a day: 0 sent since midnight (None today)."
    )
    rows, _ = next_best_with_strategy(workspace=workspace, customer=c1, now=NOW)
    assert rows == []
    assert Guardrail.objects.for_workspace(workspace).count() == 1


@pytest.mark.parametrize("action", ["raise", "lower"])
def test_raise_and_lower_move_the_ranking_score(workspace, action):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    someone = Customer.objects.for_workspace(workspace).order_by("external_id").first()
    before, _ = next_best_with_strategy(workspace=workspace, customer=someone, limit=100, now=AS_OF)
    label = Label.objects.for_workspace(workspace).filter(messages__key=before[-1]["key"]).first()
    override_create(
        workspace=workspace,
        actor=ANNA,
        customer_external_id=someone.external_id,
        label=label,
        action=action,
        value=1.0,
    )
    after, _ = next_best_with_strategy(workspace=workspace, customer=someone, limit=100, now=AS_OF)
    score = {row["key"]: row["score"] for row in before}
    carrying = set(label.messages.values_list("key", flat=True))
    for row in after:
        moved = row["score"] - score[row["key"]]
        if row["key"] in carrying:
            assert (moved > 0) == (action == "raise") and moved != 0
        else:
            assert moved == pytest.approx(0.0)
