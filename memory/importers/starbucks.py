"""The Starbucks rewards data: offers as Primer messages, profiles as traits, the transcript."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from campaigns.catalogue.services import MessageSpec, label_describe, messages_upsert
from campaigns.models import Workspace
from memory.importers.lines import SourceLine, numbered_lines
from memory.ingest.segment import SegmentEvent

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


# --- Events -------------------------------------------------------------------------------

START = datetime(2018, 1, 1, tzinfo=UTC)
UNKNOWN_AGE = 118
OFFER_COMPLETED = "Offer Completed"


def starbucks_catalogue_load(*, workspace: Workspace, portfolio: Path | None) -> None:
    """Register the offers of a portfolio file (if given) and name the offer-type labels."""
    if portfolio is not None:
        messages_upsert(workspace=workspace, specs=read_portfolio(portfolio))
    for slug, name in OFFER_TYPE_LABELS.items():
        label_describe(
            workspace=workspace,
            label_set="value_proposition",
            slug=slug,
            name=name,
            prompt_phrase=name.lower(),
        )


def transcript_path(directory: Path) -> Path:
    """Return the directory's transcript: transcript.json, or compressed (.xz as shipped, .gz)."""
    for name in ("transcript.json.xz", "transcript.json.gz", "transcript.json"):
        if (directory / name).exists():
            return directory / name
    return directory / "transcript.json.xz"


def profile_lines(path: Path) -> Iterator[SourceLine | None]:
    """Yield each profile as an identify call carrying the person's traits.

    Unknown values are left out: age 118, a null gender or income. `became_member_on`
    (YYYYMMDD) becomes an ISO date.
    """
    for number, line in numbered_lines(path):
        if not line.strip():
            yield None
            continue
        try:
            person = msgspec.json.decode(line)
            traits = {}
            if person.get("gender") is not None:
                traits["gender"] = person["gender"]
            if person.get("age") is not None and person["age"] != UNKNOWN_AGE:
                traits["age"] = person["age"]
            if person.get("income") is not None:
                traits["income"] = person["income"]
            joined = person.get("became_member_on")
            if joined:
                traits["became_member_on"] = (
                    datetime.strptime(str(joined), "%Y%m%d").date().isoformat()
                )
            event = SegmentEvent(type="identify", userId=person["id"], traits=traits)
        except (msgspec.DecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            yield SourceLine(number, error=f"not a profile: {_describe(error)}")
            continue
        yield SourceLine(number, payload=event)


def transcript_lines(path: Path, *, workspace: Workspace) -> Iterator[SourceLine | None]:
    """Yield each transcript record as a track call in the workspace's event names.

    offer received -> send event, offer viewed -> open event, offer completed -> Offer
    Completed (with its reward), each naming the offer in properties.message_id; transaction ->
    the goal event with `revenue`. Hour h is 2018-01-01T00:00:00Z + h hours.
    """
    names = {
        "offer received": workspace.send_event,
        "offer viewed": workspace.open_event,
        "offer completed": OFFER_COMPLETED,
        "transaction": workspace.goal_event,
    }
    for number, line in numbered_lines(path):
        if not line.strip():
            yield None
            continue
        try:
            record = msgspec.json.decode(line)
            kind = record["event"]
            name = names.get(kind)
            if name is None:
                yield SourceLine(number, error=f"unknown event {kind!r}", field="event")
                continue
            value = record["value"]
            if kind == "transaction":
                properties = {"revenue": float(value["amount"])}
            else:
                # The offer key is spelled both "offer id" and "offer_id".
                offer = value.get("offer id") or value.get("offer_id")
                if not offer:
                    yield SourceLine(number, error="names no offer id", field="value")
                    continue
                properties = {"message_id": offer}
                if "reward" in value:
                    properties["reward"] = value["reward"]
            hours = record["time"]
            if isinstance(hours, bool) or not isinstance(hours, int | float):
                yield SourceLine(number, error=f"{hours!r} is not a number", field="time")
                continue
            event = SegmentEvent(
                type="track",
                userId=record["person"],
                event=name,
                timestamp=START + timedelta(hours=hours),
                properties=properties,
            )
        except (msgspec.DecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            yield SourceLine(number, error=f"not a transcript record: {_describe(error)}")
            continue
        yield SourceLine(number, payload=event)


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing {error.args[0]!r}"
    return str(error)
