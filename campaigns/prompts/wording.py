"""The words a prompt uses for numbers: evidence, priming, times, rates, signals.

Pure functions of the memory's numbers, so the same memory always reads the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from memory.scoring.priming import PRIMED_MIN_SCORE

# How much of the memory a prompt shows. Documented in docs/prompts.md.
TOP_LABELS = 3
MAX_TRAITS = 12
MAX_AVOID_MESSAGES = 3
MAX_AVOID_LABELS = 3
MAX_SIGNALS = 3
MAX_SIGNAL_PROPERTIES = 3
PHRASE_LIMIT = 80
RECENT_SENDS_DAYS = 7
# Evidence words from the customer's own part of alpha + beta: alpha + beta minus the prior's
# strength alpha0 + beta0, which is their recency-discounted sends of the label (`exposures`).
# alpha + beta alone says little: the empirical-Bayes prior can weigh hundreds of pseudo-sends.
EVIDENCE_WORDS = ((2.0, "weak"), (5.0, "moderate"))
EVIDENCE_STRONG = "strong"
# Primed-score words: the score sums log(lift) of recent priming actions, decayed.
PRIMED_WORDS = ((PRIMED_MIN_SCORE, "not primed"), (0.5, "slightly primed"), (1.0, "primed"))
PRIMED_STRONG = "strongly primed"
HOURS_A_WEEK = 168.0


def evidence_word(evidence: float, exposures: float) -> str:
    """Name how much of a label's weight rests on the customer's own sends: weak to strong."""
    own = min(exposures, evidence)  # evidence = prior strength + exposures
    for upper, word in EVIDENCE_WORDS:
        if own < upper:
            return word
    return EVIDENCE_STRONG


def primed_word(score: float) -> str:
    """Name how primed a customer is from their primed score."""
    for upper, word in PRIMED_WORDS:
        if score < upper:
            return word
    return PRIMED_STRONG


def ago(then: datetime, now: datetime | None) -> str:
    """Say how long before `now` (the memory time) `then` was, e.g. '2 h ago'."""
    if now is None:
        return ""
    seconds = max((now - then).total_seconds(), 0.0)
    if seconds < 3600:
        return f"{max(round(seconds / 60), 1)} min ago"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


@lru_cache(maxsize=4096)  # a recompute gives many customers the same memory time
def iso(moment: datetime | None) -> str:
    """Return an aware time as UTC ISO 8601 with seconds, or '' for none."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _joined(phrases: list[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _label_words(label: dict) -> str:
    """Name a label with where its weight comes from: evidence, or who set it."""
    if label.get("provenance") == "marketer" and label.get("set_by"):
        return f"{label['phrase']} ({label['set_by']})"
    return f"{label['phrase']} ({label['evidence_word']} evidence)"


def label_set_summary(labels: list[dict]) -> str:
    """Say, in one sentence, which labels the customer responds to more than others."""
    if not labels:
        return ""
    lead = f"responds to {_label_words(labels[0])}"
    rest = [_label_words(label) for label in labels[1:]]
    return f"{lead} more than to {_joined(rest)}" if rest else lead


def never_text(labels: list[dict]) -> str:
    """Say which labels a marketer ruled out for the customer, e.g. 'never urgency (set by
    anna on 2026-12-07)'."""
    return "; ".join(f"never {label['phrase']} ({label['set_by']})" for label in labels)


def engine_signals(value: object) -> list[tuple[str, float, float]]:
    """Read the engine's CustomerState.signals: [{"event", "hours_ago", "lift"}], newest first."""
    if not isinstance(value, list):
        return []
    signals = []
    for item in value:
        try:
            signals.append((str(item["event"]), float(item["hours_ago"]), float(item["lift"])))
        except (KeyError, TypeError, ValueError):
            continue  # a malformed entry says nothing trustworthy
    return signals


def span(hours: float) -> str:
    """Say how long a stretch of time is, e.g. '30 h' or '21 days'."""
    if hours < 48:
        return f"{max(round(hours), 1)} h"
    return f"{round(hours / 24)} days"


def per_week(rate_h: float | None) -> float | None:
    """Return a rate per hour as times a week, to two significant places (None stays None)."""
    if rate_h is None:
        return None
    weekly = rate_h * HOURS_A_WEEK
    return round(weekly, 1) if weekly >= 1 else round(weekly, 2)


def goal_summary(goal_event: str, goal: dict) -> str:
    """Say how often the customer reached the goal, lately and as the engine estimates it."""
    if goal["observed_h"] is None:
        return ""
    count, hours = goal["count"], span(goal["observed_h"])
    line = f"{goal_event} {count} time{'s' if count != 1 else ''} in the last {hours}"
    line += f", the last {goal['last_ago']}" if goal["last_ago"] else ""
    rates = ("rate_week", "segment_rate_week", "population_rate_week")
    if all(goal[name] is not None for name in rates):
        line += (
            f" (about {goal['rate_week']:g} a week; customers of their profile: "
            f"{goal['segment_rate_week']:g} a week; everyone: "
            f"{goal['population_rate_week']:g} a week)"
        )
    return line


def avoid_message_line(item: dict) -> str:
    """Say which worn-out message to avoid, how often and how lately it was sent."""
    line = f"- messages like {item['text']}"
    recent, sends = item["sends_recent"], item["sends"]
    if recent:
        line += (
            f", sent {recent} time{'s' if recent != 1 else ''} in the last {RECENT_SENDS_DAYS} days"
        )
    elif sends:
        line += f", sent {sends} time{'s' if sends != 1 else ''}"
    if item["last_sent_ago"]:
        line += f" (last sent {item['last_sent_ago']})"
    return line


def signal_text(item: dict) -> str:
    """Say what the customer did, how long before the memory time, with a few properties."""
    text = f"{item['event']} {item['ago']}"
    return f"{text} ({item['properties']})" if item["properties"] else text
