"""Overrides: a label's weight as learned, as the population prior, or as a marketer set it.

Pure. Each label's weight is built in layers, in log-odds: the customer's learned posterior
mean (or the population prior when they have no sends of their own with the label), then the
workspace's boost (the override for everyone), then the segment overrides, then the
customer's own; pin and forget replace what lies beneath, raise and lower move it by
ln(boost_odds) * strength, as a boost does. The ranking already carries the boost, so a
message's score moves by the mean, over its labels, of the log-odds the overrides add on top
of it; a weight pinned to 0 ("never") excludes every message carrying the label.
Semantics and why: docs/decisions/0260-guardrails-and-overrides.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from memory.scoring.guardrails import Candidate, Exclusion

Action = Literal["pin", "raise", "lower", "forget"]
Scope = Literal["everyone", "segment", "customer"]
SCOPE_ORDER = {"everyone": 0, "segment": 1, "customer": 2}
# A pinned 0 or 1 would be infinite log-odds; the weight is still shown as pinned.
RATE_EDGE = 1e-6
DEFAULT_BOOST_ODDS = 3.0


@dataclass(frozen=True)
class OverrideRule:
    """One override in force for a customer (a stored Override, or a label's boost)."""

    id: int  # 0 for a label's boost
    label_id: int
    action: Action
    scope: Scope
    value: float | None = None  # pin: the weight; raise/lower: the strength (0..1)
    set_by: str = ""
    set_at: datetime | None = None
    expires_at: datetime | None = None
    note: str = ""
    scope_text: str = ""  # "customer 42", "segment plan = \"pro\"", "everyone"

    def in_force(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    @property
    def is_never(self) -> bool:
        return self.action == "pin" and (self.value or 0.0) <= 0.0

    def describe(self) -> str:
        """Say what the override does, e.g. 'never' or 'raised (0.5)'."""
        if self.action == "pin":
            return "never" if self.is_never else f"pinned at {self.value:.2f}"
        if self.action == "forget":
            return "forgotten (population prior)"
        word = "raised" if self.action == "raise" else "lowered"
        return f"{word} ({self.value:g})"

    def set_text(self) -> str:
        """Say who set it and when, e.g. 'set by anna on 2026-12-07'."""
        when = f" on {self.set_at:%Y-%m-%d}" if self.set_at else ""
        return f"set by {self.set_by or 'a marketer'}{when}"


@dataclass(frozen=True)
class Learned:
    """A customer's stored posterior for a label."""

    weight: float
    sends: float  # discounted exposures
    goals: float  # discounted conversions


@dataclass(frozen=True)
class EffectiveWeight:
    """A label's weight for a customer and where it comes from."""

    label_id: int
    weight: float
    provenance: Literal["learned", "population prior", "marketer"]
    base_weight: float  # learned or prior, before any override
    base_provenance: Literal["learned", "population prior"]
    sends: float = 0.0
    goals: float = 0.0
    override: OverrideRule | None = None  # the last layer that changed it
    layers: tuple[OverrideRule, ...] = ()
    log_odds_shift: float = 0.0  # beyond the boost, which the ranking already carries

    @property
    def is_never(self) -> bool:
        return self.override is not None and self.override.is_never

    def provenance_text(self) -> str:
        """Say where the weight comes from in a line, for pages, exports and the prompt."""
        if self.override is not None and self.provenance == "marketer":
            text = f"{self.override.describe()}, {self.override.set_text()}"
            if self.override.scope != "customer":
                text += f" for {self.override.scope_text or self.override.scope}"
            if self.override.expires_at:
                text += f", until {self.override.expires_at:%Y-%m-%d}"
            return text
        if self.provenance == "learned":
            return f"learned from {self.sends:.1f} sends, {self.goals:.1f} goals"
        return "population prior (no sends of their own)"

    def as_dict(self) -> dict:
        rule = self.override
        return {
            "weight": self.weight,
            "provenance": self.provenance,
            "provenance_text": self.provenance_text(),
            "base_weight": self.base_weight,
            "base_provenance": self.base_provenance,
            "evidence": {"sends": self.sends, "goals": self.goals},
            "override": None
            if rule is None
            else {
                "id": rule.id or None,
                "kind": "boost" if rule.id == 0 else "override",
                "action": rule.action,
                "value": rule.value,
                "scope": rule.scope,
                "scope_text": rule.scope_text,
                "set_by": rule.set_by,
                "set_at": rule.set_at.isoformat() if rule.set_at else None,
                "expires_at": rule.expires_at.isoformat() if rule.expires_at else None,
                "note": rule.note,
            },
            "never": self.is_never,
        }


def _logit(p: float) -> float:
    p = min(max(p, RATE_EDGE), 1 - RATE_EDGE)
    return math.log(p / (1 - p))


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _ordered(rules: Iterable[OverrideRule], now: datetime) -> dict[int, list[OverrideRule]]:
    """Return the rules in force per label, least specific first, older first within a scope."""
    by_label: dict[int, list[OverrideRule]] = {}
    for rule in rules:
        if rule.in_force(now):
            by_label.setdefault(rule.label_id, []).append(rule)
    for layers in by_label.values():
        layers.sort(
            key=lambda r: (
                SCOPE_ORDER[r.scope],
                r.set_at or datetime.min.replace(tzinfo=now.tzinfo),
                r.id,
            )
        )
    return by_label


def effective_weights(
    learned: Mapping[int, Learned],
    priors: Mapping[int, float],
    overrides: Iterable[OverrideRule],
    now: datetime,
    *,
    boost_odds: float = DEFAULT_BOOST_ODDS,
) -> dict[int, EffectiveWeight]:
    """Return each label's weight with its provenance (labels priced, learned or overridden).

    `learned` holds the customer's stored posteriors; a label with no sends of their own (or
    no row) is the population prior `priors[label]`. `overrides` are those whose scope holds
    the customer (boosts as scope "everyone"); expired ones are ignored.
    """
    step = math.log(boost_odds)
    layered = _ordered(overrides, now)
    result = {}
    # A label known only from an override (no run has priced it yet) takes the mean prior.
    fallback = sum(priors.values()) / len(priors) if priors else 0.5
    for label_id in sorted(set(priors) | set(learned) | set(layered)):
        own = learned.get(label_id)
        prior = priors.get(label_id, own.weight if own else fallback)
        if own is not None and own.sends > 0:
            base, provenance, sends, goals = own.weight, "learned", own.sends, own.goals
        else:
            base, provenance, sends, goals = (
                own.weight if own is not None else prior,
                "population prior",
                0.0,
                0.0,
            )
        log_odds = _logit(base)
        after_boost = log_odds
        last = None
        layers = tuple(layered.get(label_id, ()))
        for rule in layers:
            if rule.action == "pin":
                log_odds = _logit(rule.value or 0.0)
            elif rule.action == "forget":
                log_odds = _logit(prior)
            elif rule.action == "raise":
                log_odds += step * (rule.value or 0.0)
            elif rule.action == "lower":
                log_odds -= step * (rule.value or 0.0)
            if rule.scope == "everyone":
                after_boost = log_odds
            last = rule
        # A raise or lower of strength 0 leaves the weight as it was.
        changed = last is not None and not (last.action in ("raise", "lower") and not last.value)
        weight = 0.0 if last is not None and last.is_never else _expit(log_odds)
        if last is not None and last.action == "pin":
            weight = float(last.value or 0.0)
        if not changed:
            weight = base  # no round trip through log-odds
        result[label_id] = EffectiveWeight(
            label_id=label_id,
            weight=weight,
            provenance="marketer" if changed else provenance,
            base_weight=base,
            base_provenance=provenance,
            sends=sends,
            goals=goals,
            override=last if changed else None,
            layers=layers,
            log_odds_shift=log_odds - after_boost,
        )
    return result


def override_score_shift(
    candidate: Candidate,
    weights: Mapping[int, EffectiveWeight],
    label_sets: Mapping[int, str] | None = None,
) -> tuple[float, Exclusion | None]:
    """Return how the overrides move a message's ranking score, or the override excluding it.

    The shift is the mean, over the message's labels, of each label's log-odds change beyond
    the boost (as rank_state averages boosts); a label pinned to 0 excludes the message with
    that override as the reason. `label_sets` (label id -> name) only words the reason.
    """
    labels = sorted(candidate.label_ids)
    for label_id in labels:
        weight = weights.get(label_id)
        if weight is not None and weight.is_never:
            rule = weight.override
            name = (label_sets or {}).get(label_id, str(label_id))
            reason = f"never {name} ({rule.set_text()}"
            reason += f" for {rule.scope_text})" if rule.scope != "customer" else ")"
            return 0.0, Exclusion(
                candidate.message_id,
                candidate.key,
                "override" if rule.id else "guardrail",
                rule.id,
                f"never {name}",
                reason,
            )
    if not labels:
        return 0.0, None
    shifts = [weights[x].log_odds_shift if x in weights else 0.0 for x in labels]
    return sum(shifts) / len(labels), None
