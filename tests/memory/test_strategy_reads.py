"""Guardrails and overrides read for one customer: their moment, the rules in force, and the
next best messages they allow (exploration included)."""

from datetime import UTC, datetime, timedelta

from campaigns.models import Guardrail, Message, Override
from campaigns.strategy.services import guardrail_create, override_create
from campaigns.tenancy.changes import Actor
from memory.models import Customer, Event
from memory.strategy import (
    customer_weights,
    strategy_decide,
)

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
    assert Guardrail.objects.for_workspace(workspace).count() == 1
