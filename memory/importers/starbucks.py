"""The Starbucks rewards data: offers as Primer messages (events are read by the importer)."""

import json
from pathlib import Path

from campaigns.services import MessageSpec

OFFER_TYPE_LABELS = {
    "bogo": "Buy one, get one free",
    "discount": "Discount",
    "informational": "Information only",
}


def reward_level(reward: float) -> str:
    """Bucket an offer's reward (in dollars) into none, low, medium or high."""
    if reward <= 0:
        return "none"
    if reward < 5:
        return "low"
    if reward < 10:
        return "medium"
    return "high"


def offer_message_spec(offer: dict) -> MessageSpec:
    """Describe one portfolio offer as a message with its labels."""
    offer_type = offer["offer_type"]
    channels = sorted(offer["channels"])
    days = int(offer["duration"])
    if offer_type == "informational":
        subject = f"News from Starbucks, for the next {days} days"
        body = f"Something new to try at Starbucks this week. Valid {days} days."
    elif offer_type == "bogo":
        subject = (
            f"Buy one, get one free: spend ${offer['difficulty']}, get ${offer['reward']} back"
        )
        body = (
            f"Spend ${offer['difficulty']} within {days} days and the next one is on us: "
            f"a ${offer['reward']} reward."
        )
    else:
        subject = f"${offer['reward']} off when you spend ${offer['difficulty']}"
        body = (
            f"A discount for you: spend ${offer['difficulty']} within {days} days "
            f"and save ${offer['reward']}."
        )
    return MessageSpec(
        key=offer["id"],
        channel="+".join(channels),
        subject=subject,
        body=body,
        labels={
            "value_proposition": [offer_type],
            "channel": channels,
            "reward": [reward_level(float(offer["reward"]))],
        },
    )


def read_portfolio(path: Path) -> list[MessageSpec]:
    """Read portfolio.json (one offer per line) into message specs."""
    with open(path, encoding="utf-8") as handle:
        return [offer_message_spec(json.loads(line)) for line in handle if line.strip()]
