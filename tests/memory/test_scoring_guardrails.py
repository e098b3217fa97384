"""The guardrail rules: caps per day and week, per label, eligibility, after-event, quiet hours."""

from datetime import UTC, datetime, time, timedelta

from memory.audiences import trait_filter_parse
from memory.scoring.guardrails import Candidate, Moment, Rule, Send, guardrail_exclusions

DISCOUNT, EMAIL, TECH = 1, 2, 3
# Thursday 10 December 2026, 15:00 UTC.
NOW = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
CANDIDATES = [
    Candidate(10, "spring-discount", frozenset({DISCOUNT, EMAIL})),
    Candidate(11, "tech-deep-dive", frozenset({TECH}), frozenset({7})),
]


def _sends(*ages_h, labels=frozenset({DISCOUNT})):
    return tuple(Send(NOW - timedelta(hours=h), 10, labels) for h in ages_h)


def _keys(verdict):
    return [c.key for c in verdict.allowed]


def test_it_caps_a_label_per_week_since_monday_and_names_the_rule():
    cap = Rule(1, "Discounts", "frequency_cap", DISCOUNT, "discount", limit=2, period="week")
    # Monday 7 Dec 10:00 and Wednesday: both this week; the Sunday before is last week's.
    moment = Moment(NOW, sends=_sends(77, 24, 90))
    verdict = guardrail_exclusions(CANDIDATES, moment, [cap])
    assert _keys(verdict) == ["tech-deep-dive"]
    (excluded,) = verdict.excluded
    assert excluded.key == "spring-discount" and excluded.rule_id == 1
    assert excluded.reason == "at most 2 discount messages a week: 2 sent since Mon 7 Dec"
    assert verdict.nothing_now == ""


def test_it_lets_the_week_cap_through_when_one_send_was_last_week():
    cap = Rule(1, "Discounts", "frequency_cap", DISCOUNT, "discount", limit=2, period="week")
    verdict = guardrail_exclusions(CANDIDATES, Moment(NOW, sends=_sends(24, 90)), [cap])
    assert _keys(verdict) == ["spring-discount", "tech-deep-dive"]


def test_it_caps_per_day_from_local_midnight():
    cap = Rule(2, "Daily", "frequency_cap", EMAIL, "email", limit=1, period="day")
    sends = _sends(14, labels=frozenset({EMAIL}))  # 01:00 UTC today
    assert _keys(guardrail_exclusions(CANDIDATES, Moment(NOW, sends=sends), [cap])) == [
        "tech-deep-dive"
    ]
    # In Los Angeles it is 07:00 and that send was yesterday evening there.
    moment = Moment(NOW, time_zone="America/Los_Angeles", sends=sends)
    assert len(guardrail_exclusions(CANDIDATES, moment, [cap]).allowed) == 2


def test_an_overall_cap_reached_means_nothing_may_be_sent_now():
    cap = Rule(3, "Three a week", "frequency_cap", limit=3, period="week")
    moment = Moment(NOW, sends=_sends(1, 2) + _sends(3, labels=frozenset({TECH})))
    verdict = guardrail_exclusions(CANDIDATES, moment, [cap])
    assert verdict.allowed == ()
    assert verdict.nothing_now == (
        "Nothing may be sent now: at most 3 messages a week: 3 sent since Mon 7 Dec (Three a week)."
    )
    assert {e.rule_id for e in verdict.excluded} == {3} and len(verdict.excluded) == 2


def test_eligibility_excludes_a_campaigns_messages_for_customers_outside_its_filter():
    pros = trait_filter_parse({"all": [{"trait": "plan", "equals": "pro"}]})
    rule = Rule(4, "Pro only", "eligibility", campaign_id=7, audience=pros)
    free = guardrail_exclusions(CANDIDATES, Moment(NOW, traits={"plan": "free"}), [rule])
    assert _keys(free) == ["spring-discount"]
    assert free.excluded[0].reason == (
        'only for customers with plan = "pro": this customer does not match'
    )
    pro = guardrail_exclusions(CANDIDATES, Moment(NOW, traits={"plan": "pro"}), [rule])
    assert len(pro.allowed) == 2


def test_after_an_event_a_scoped_rule_waits_its_hours():
    rule = Rule(
        5,
        "No discount after purchase",
        "after_event",
        DISCOUNT,
        "discount",
        event_name="Order Completed",
        hours=24,
    )
    recent = Moment(NOW, last_events={"Order Completed": NOW - timedelta(hours=3)})
    verdict = guardrail_exclusions(CANDIDATES, recent, [rule])
    assert _keys(verdict) == ["tech-deep-dive"]
    assert verdict.excluded[0].reason == (
        "not within 24 h after Order Completed: the last one was 3 h ago"
    )
    old = Moment(NOW, last_events={"Order Completed": NOW - timedelta(hours=25)})
    assert len(guardrail_exclusions(CANDIDATES, old, [rule]).allowed) == 2


def test_an_unscoped_after_event_rule_stops_every_send():
    rule = Rule(6, "Calm after a complaint", "after_event", event_name="Complaint", hours=72)
    moment = Moment(NOW, last_events={"Complaint": NOW - timedelta(hours=50)})
    verdict = guardrail_exclusions(CANDIDATES, moment, [rule])
    assert verdict.allowed == ()
    assert "not within 3 days after Complaint" in verdict.nothing_now


def test_quiet_hours_across_midnight_in_the_workspace_time_zone():
    rule = Rule(8, "Nights", "quiet_hours", quiet_start=time(21), quiet_end=time(8))
    # 15:00 UTC is 00:00 in Tokyo (inside) and 16:00 in Paris (outside).
    tokyo = guardrail_exclusions(CANDIDATES, Moment(NOW, time_zone="Asia/Tokyo"), [rule])
    assert tokyo.allowed == ()
    assert tokyo.nothing_now == (
        "Nothing may be sent now: quiet hours 21:00-08:00 (Asia/Tokyo): it is 00:00 there (Nights)."
    )
    paris = guardrail_exclusions(CANDIDATES, Moment(NOW, time_zone="Europe/Paris"), [rule])
    assert len(paris.allowed) == 2
    # 07:59 local is still quiet, 08:00 is not.
    early = datetime(2026, 12, 10, 6, 59, tzinfo=UTC)  # 07:59 in Paris
    assert guardrail_exclusions(CANDIDATES, Moment(early, "Europe/Paris"), [rule]).nothing_now
    eight = early + timedelta(minutes=1)
    assert not guardrail_exclusions(CANDIDATES, Moment(eight, "Europe/Paris"), [rule]).nothing_now


def test_quiet_hours_within_one_day():
    rule = Rule(9, "Lunch", "quiet_hours", quiet_start=time(12), quiet_end=time(14))
    noon = datetime(2026, 12, 10, 11, 30, tzinfo=UTC)  # 12:30 in Paris
    assert guardrail_exclusions(CANDIDATES, Moment(noon, "Europe/Paris"), [rule]).nothing_now
    assert not guardrail_exclusions(CANDIDATES, Moment(noon, "UTC"), [rule]).nothing_now


def test_the_first_rule_that_holds_a_candidate_names_the_exclusion():
    cap = Rule(1, "Discounts", "frequency_cap", DISCOUNT, "discount", limit=1, period="day")
    email = Rule(2, "Email", "frequency_cap", EMAIL, "email", limit=1, period="day")
    sends = _sends(1, labels=frozenset({DISCOUNT, EMAIL}))
    verdict = guardrail_exclusions(CANDIDATES, Moment(NOW, sends=sends), [email, cap])
    assert [e.rule_id for e in verdict.excluded] == [2]
