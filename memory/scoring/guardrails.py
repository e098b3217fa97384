"""Guardrails: which candidate messages may be sent to one customer now, and why not the others.

Pure: rules, the customer's moment (recent sends, last events, local time) and candidates in;
for each candidate allowed or excluded with the guardrail and a plain reason out, plus "nothing
may be sent now" when a rule forbids every send (quiet hours, an overall cap, an unscoped
after-event window). Semantics and why: docs/decisions/0260-guardrails-and-overrides.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

Kind = Literal["frequency_cap", "eligibility", "after_event", "quiet_hours"]


class Audience(Protocol):
    def matches(self, traits: dict) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Candidate:
    """A message that could be offered: its id, key, label ids and campaign ids."""

    message_id: int
    key: str
    label_ids: frozenset[int] = frozenset()
    campaign_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Send:
    """A message sent to the customer: when (aware), which message, its labels."""

    at: datetime
    message_id: int | None
    label_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Moment:
    """What the rules need to know about the customer now."""

    now: datetime  # aware
    time_zone: str = "UTC"
    sends: tuple[Send, ...] = ()  # at least the last 7 days'
    last_events: dict[str, datetime] = field(default_factory=dict)  # name -> latest occurrence
    traits: dict = field(default_factory=dict)

    @property
    def local(self) -> datetime:
        return self.now.astimezone(ZoneInfo(self.time_zone))


@dataclass(frozen=True)
class Rule:
    """One guardrail as the rules read it (campaigns.models.Guardrail, flattened)."""

    id: int
    name: str
    kind: Kind
    label_id: int | None = None
    label_name: str = ""
    message_id: int | None = None
    campaign_id: int | None = None
    limit: int | None = None
    period: str = ""  # "day" or "week"
    audience: Audience | None = None
    event_name: str = ""
    hours: float | None = None
    quiet_start: time | None = None
    quiet_end: time | None = None

    @property
    def scoped(self) -> bool:
        return any(x is not None for x in (self.label_id, self.message_id, self.campaign_id))

    def applies_to(self, candidate: Candidate) -> bool:
        """Tell whether the candidate is in the rule's scope (an unscoped rule: every one)."""
        if not self.scoped:
            return True
        return (
            (self.label_id is not None and self.label_id in candidate.label_ids)
            or (self.message_id is not None and self.message_id == candidate.message_id)
            or (self.campaign_id is not None and self.campaign_id in candidate.campaign_ids)
        )


@dataclass(frozen=True)
class Exclusion:
    """A candidate not offered, by which rule (a guardrail or an override), and why."""

    message_id: int
    key: str
    source: Literal["guardrail", "override"]
    rule_id: int
    rule_name: str
    reason: str

    def as_dict(self) -> dict:
        return {
            "message_id": self.message_id,
            "key": self.key,
            "source": self.source,
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Verdict:
    """The candidates allowed, those excluded, and '' or why nothing may be sent now."""

    allowed: tuple[Candidate, ...]
    excluded: tuple[Exclusion, ...]
    nothing_now: str = ""


def period_start(moment: Moment, period: str) -> datetime:
    """Return when the current local day or week (from Monday) began, as an aware time."""
    local = moment.local
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        start -= timedelta(days=local.weekday())
    # Rebuilt from the wall clock so a DST change inside the week keeps local midnight.
    return datetime(start.year, start.month, start.day, tzinfo=ZoneInfo(moment.time_zone))


def _since_text(moment: Moment, period: str, start: datetime) -> str:
    return "since midnight" if period == "day" else f"since {start:%a} {start.day} {start:%b}"


def _hours_text(hours: float) -> str:
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def cap_count(rule: Rule, moment: Moment) -> tuple[int, datetime]:
    """Return how many of the rule's sends the period holds so far, and when it began."""
    start = period_start(moment, rule.period)
    count = sum(
        1
        for send in moment.sends
        if start <= send.at <= moment.now
        and (rule.label_id is None or rule.label_id in send.label_ids)
    )
    return count, start


def in_quiet_hours(rule: Rule, moment: Moment) -> bool:
    """Tell whether the local time is inside [start, end), the window may cross midnight."""
    now = moment.local.time().replace(tzinfo=None)
    start, end = rule.quiet_start, rule.quiet_end
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end


def _cap_reason(rule: Rule, count: int, moment: Moment, start: datetime) -> str:
    what = f"{rule.label_name} messages" if rule.label_id is not None else "messages"
    return (
        f"at most {rule.limit} {what} {'a day' if rule.period == 'day' else 'a week'}: "
        f"{count} sent {_since_text(moment, rule.period, start)}"
    )


def _blocking(rule: Rule, moment: Moment) -> str:
    """Return why the rule forbids its scope now, or ''; eligibility is per candidate."""
    if rule.kind == "quiet_hours":
        if in_quiet_hours(rule, moment):
            return (
                f"quiet hours {rule.quiet_start:%H:%M}-{rule.quiet_end:%H:%M} "
                f"({moment.time_zone}): it is {moment.local:%H:%M} there"
            )
        return ""
    if rule.kind == "frequency_cap":
        if rule.limit is None:
            return ""
        count, start = cap_count(rule, moment)
        return _cap_reason(rule, count, moment, start) if count >= rule.limit else ""
    if rule.kind == "after_event":
        last = moment.last_events.get(rule.event_name)
        if last is None or rule.hours is None or last > moment.now:
            return ""
        elapsed = (moment.now - last).total_seconds() / 3600
        if elapsed < rule.hours:
            return (
                f"not within {_hours_text(rule.hours)} after {rule.event_name}: "
                f"the last one was {_hours_text(round(elapsed, 1))} ago"
            )
    return ""


def _ineligible(rule: Rule, moment: Moment) -> str:
    if rule.audience is None or rule.audience.matches(moment.traits):
        return ""
    return f"only for customers with {rule.audience.describe()}: this customer does not match"


def guardrail_exclusions(
    candidates: Iterable[Candidate], moment: Moment, rules: Iterable[Rule]
) -> Verdict:
    """Return which candidates the rules allow now, each exclusion with its rule and reason.

    A rule with no scope that blocks (quiet hours, an overall cap reached, an unscoped
    after-event window) forbids every send: `nothing_now` says so and every candidate is
    excluded by it. Otherwise a candidate is excluded by the first rule (in the order given)
    whose scope holds it and that blocks now, or whose audience the customer does not match.
    """
    candidates, rules = list(candidates), list(rules)
    blocking = {rule.id: _blocking(rule, moment) for rule in rules}
    for rule in rules:
        if blocking[rule.id] and (rule.kind == "quiet_hours" or not rule.scoped):
            reason = blocking[rule.id]
            excluded = tuple(
                Exclusion(c.message_id, c.key, "guardrail", rule.id, rule.name, reason)
                for c in candidates
            )
            return Verdict((), excluded, f"Nothing may be sent now: {reason} ({rule.name}).")
    allowed, excluded = [], []
    for candidate in candidates:
        why = None
        for rule in rules:
            if not rule.applies_to(candidate):
                continue
            reason = _ineligible(rule, moment) if rule.kind == "eligibility" else blocking[rule.id]
            if reason:
                why = Exclusion(
                    candidate.message_id, candidate.key, "guardrail", rule.id, rule.name, reason
                )
                break
        if why is None:
            allowed.append(candidate)
        else:
            excluded.append(why)
    return Verdict(tuple(allowed), tuple(excluded))
