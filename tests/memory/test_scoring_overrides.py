"""The override rules: pin, raise, lower, forget, expiry, layering and provenance."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from memory.scoring.guardrails import Candidate
from memory.scoring.overrides import (
    Learned,
    OverrideRule,
    effective_weights,
    override_score_shift,
)

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
URGENCY, TECH, PLAYFUL = 1, 2, 3
LEARNED = {URGENCY: Learned(0.20, sends=6.0, goals=2.0), TECH: Learned(0.10, sends=0.0, goals=0)}
PRIORS = {URGENCY: 0.12, TECH: 0.10, PLAYFUL: 0.08}
STEP = math.log(3.0)


def logit(p):
    return math.log(p / (1 - p))


def rule(action, value=None, *, label=URGENCY, scope="customer", id=1, **kwargs):
    kwargs.setdefault("set_by", "anna")
    kwargs.setdefault("set_at", NOW - timedelta(days=1))
    return OverrideRule(id, label, action, scope, value, **kwargs)


def test_without_overrides_each_weight_is_learned_or_the_population_prior():
    weights = effective_weights(LEARNED, PRIORS, [], NOW)
    assert weights[URGENCY].provenance == "learned"
    assert weights[URGENCY].weight == 0.20
    assert weights[URGENCY].provenance_text() == "learned from 6.0 sends, 2.0 goals"
    # A row without sends of their own, and no row at all: the population prior.
    assert weights[TECH].provenance == "population prior"
    assert weights[PLAYFUL].weight == 0.08 and weights[PLAYFUL].provenance == "population prior"


def test_a_pin_sets_the_weight_and_says_who_and_when():
    weights = effective_weights(LEARNED, PRIORS, [rule("pin", 0.6)], NOW)
    pinned = weights[URGENCY]
    assert pinned.weight == 0.6 and pinned.provenance == "marketer"
    assert pinned.base_provenance == "learned" and pinned.base_weight == 0.20
    assert pinned.provenance_text() == "pinned at 0.60, set by anna on 2026-12-06"
    assert pinned.log_odds_shift == pytest.approx(logit(0.6) - logit(0.2))


def test_raise_and_lower_move_the_log_odds_like_a_boost():
    raised = effective_weights(LEARNED, PRIORS, [rule("raise", 0.5)], NOW)[URGENCY]
    assert logit(raised.weight) == pytest.approx(logit(0.2) + 0.5 * STEP)
    lowered = effective_weights(LEARNED, PRIORS, [rule("lower", 1.0)], NOW)[URGENCY]
    assert logit(lowered.weight) == pytest.approx(logit(0.2) - STEP)
    assert lowered.provenance_text() == "lowered (1), set by anna on 2026-12-06"


def test_forget_reverts_to_the_population_prior():
    forgotten = effective_weights(LEARNED, PRIORS, [rule("forget")], NOW)[URGENCY]
    assert forgotten.weight == pytest.approx(0.12)
    assert forgotten.provenance == "marketer"
    assert forgotten.provenance_text().startswith("forgotten (population prior), set by anna")


def test_an_expired_override_is_ignored():
    expired = rule("pin", 0.9, expires_at=NOW - timedelta(minutes=1))
    live = rule("pin", 0.9, expires_at=NOW + timedelta(days=3))
    assert effective_weights(LEARNED, PRIORS, [expired], NOW)[URGENCY].provenance == "learned"
    kept = effective_weights(LEARNED, PRIORS, [live], NOW)[URGENCY]
    assert kept.weight == 0.9 and kept.provenance_text().endswith("until 2026-12-10")


def test_the_customer_override_lies_over_the_segment_and_the_boost():
    boost = rule("raise", 1.0, scope="everyone", id=0, scope_text="everyone")
    segment = rule("pin", 0.3, scope="segment", id=2, scope_text='plan = "pro"')
    customer = rule("raise", 0.5, id=3, set_at=NOW - timedelta(days=9))
    weight = effective_weights(LEARNED, PRIORS, [customer, segment, boost], NOW)[URGENCY]
    assert logit(weight.weight) == pytest.approx(logit(0.3) + 0.5 * STEP)
    assert weight.override.id == 3
    # The ranking carries the boost already: the shift is measured from the boosted weight.
    assert weight.log_odds_shift == pytest.approx(logit(0.3) + 0.5 * STEP - (logit(0.2) + STEP))
    segment_only = effective_weights(LEARNED, PRIORS, [segment], NOW)[URGENCY]
    assert segment_only.provenance_text() == (
        'pinned at 0.30, set by anna on 2026-12-06 for plan = "pro"'
    )


def test_a_boost_alone_is_the_override_for_everyone_with_no_shift_beyond_it():
    boost = rule("lower", 0.5, scope="everyone", id=0, scope_text="everyone")
    weight = effective_weights(LEARNED, PRIORS, [boost], NOW)[URGENCY]
    assert weight.provenance == "marketer" and weight.log_odds_shift == 0.0
    assert weight.as_dict()["override"]["kind"] == "boost"


def test_the_score_shift_averages_the_labels_like_boosts():
    weights = effective_weights(LEARNED, PRIORS, [rule("raise", 1.0)], NOW)
    shift, excluded = override_score_shift(
        Candidate(5, "hurry-tech", frozenset({URGENCY, TECH})), weights
    )
    assert excluded is None and shift == pytest.approx(STEP / 2)


def test_never_excludes_every_message_carrying_the_label_with_the_override_as_reason():
    weights = effective_weights(LEARNED, PRIORS, [rule("pin", 0.0, id=42)], NOW)
    assert weights[URGENCY].is_never and weights[URGENCY].weight == 0.0
    _, excluded = override_score_shift(
        Candidate(5, "hurry", frozenset({URGENCY, TECH})), weights, {URGENCY: "urgency"}
    )
    assert excluded.rule_id == 42 and excluded.source == "override"
    assert excluded.reason == "never urgency (set by anna on 2026-12-06)"
    shift, none = override_score_shift(Candidate(6, "calm", frozenset({TECH})), weights)
    assert none is None and shift == 0.0
