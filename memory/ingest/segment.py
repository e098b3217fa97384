"""Segment's event objects: validate each one, and turn it into a row Primer stores.

Every rejection names the field and the reason, so the native API can report it per index and
the file import per line. Validation is msgspec plus plain code: this is the hot path.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from django.utils.text import slugify

from memory.ingest import limits, structure
from memory.ingest.dedup import Occurrences, derived_key
from memory.ingest.timestamps import TimestampPolicy, event_time, out_of_bounds, parse_time

STORED_TYPES = {"track": None, "page": "Page Viewed", "screen": "Screen Viewed"}
SUPPORTED_TYPES = {*STORED_TYPES, "identify"}


class SegmentEvent(msgspec.Struct, kw_only=True):
    """One call of Segment's spec; fields Primer does not use are ignored.

    Times are ISO 8601 text or Unix seconds/milliseconds (Python callers may pass datetimes).
    """

    type: str | None = None
    userId: str | int | None = None
    anonymousId: str | int | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    timestamp: str | float | None = None
    originalTimestamp: str | float | None = None
    sentAt: str | float | None = None
    messageId: str | int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the event at `index` was not stored."""

    index: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass(slots=True)
class EventRow:
    """A valid event, normalised: who, what, when, and the key that makes it idempotent.

    `name` is None for identify, which updates the customer and stores no event.
    """

    index: int
    external_id: str
    anonymous_id: str
    name: str | None
    occurred_at: datetime
    properties: dict[str, Any]
    traits: dict[str, Any]
    message_key: str
    dedup_key: str
    properties_json: bytes = b"{}"
    message_text: str = ""
    message_channel: str = ""
    message_labels: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Inherited:
    """What events take from where they arrived: the endpoint's type, a batch's context/sentAt."""

    type: str | None = None
    force_type: bool = False
    context: dict[str, Any] | None = None
    sent_at: datetime | None = None


class Invalid(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


_decoder = msgspec.json.Decoder(SegmentEvent)


def decode_event(payload: bytes | dict | SegmentEvent) -> SegmentEvent:
    """Decode JSON bytes or convert a dict into a SegmentEvent, or raise Invalid."""
    try:
        if isinstance(payload, SegmentEvent):
            return payload
        if isinstance(payload, bytes | bytearray | memoryview | msgspec.Raw):
            size = len(memoryview(payload))
            if size > limits.MAX_EVENT_BYTES:
                raise Invalid("", limits.event_too_large(size))
            deep = structure.nests_too_deep(bytes(payload))
            if deep is not None:
                raise Invalid(deep, structure.TOO_DEEP)
            return _decoder.decode(payload)
        if isinstance(payload, dict):
            return msgspec.convert(payload, SegmentEvent)
    except msgspec.ValidationError as error:
        raise Invalid(*_split_msgspec_error(str(error))) from None
    except msgspec.DecodeError as error:
        raise Invalid("", f"malformed JSON: {error}") from None
    except UnicodeDecodeError as error:
        raise Invalid("", f"is not valid UTF-8 ({error.reason})") from None
    except RecursionError:
        raise Invalid("", structure.TOO_DEEP) from None
    raise Invalid("", f"an event must be a JSON object, not {type(payload).__name__}")


_NUL = "contains the NUL character (\\u0000), which PostgreSQL cannot store"
_encode_json = msgspec.json.encode


def _json_without_nul(value: dict[str, Any], field: str) -> bytes:
    """Return the value as JSON, refusing the NUL character anywhere in it."""
    encoded = _encode_json(value)
    # Look closer only when the bytes hint at one (an escaped backslash can look alike).
    if b"\\u0000" in encoded and _has_nul(value):
        raise Invalid(field, _NUL)
    return encoded


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


_TYPE_WORDS = {
    "`object | null`": "a JSON object",
    "`object`": "a JSON object",
    "`str | int | null`": "a string",
    "`str | null`": "a string",
    "`str | float | null`": "a time (ISO 8601 text or Unix seconds)",
    "`float | str | null`": "a time (ISO 8601 text or Unix seconds)",
    "`array`": "an array",
    "`str`": "a string",
    "`int`": "a number",
    "`float`": "a number",
    "`bool`": "a boolean",
    "`null`": "null",
}


def _split_msgspec_error(message: str) -> tuple[str, str]:
    """Turn "Expected `str | null`, got `int` - at `$.userId`" into ("userId", plain words)."""
    reason, sep, path = message.rpartition(" - at `")
    if not sep:
        return "", message
    field_path = path.rstrip("`").removeprefix("$").removeprefix(".")
    for code, words in _TYPE_WORDS.items():
        reason = reason.replace(code, words)
    return field_path, reason


def parse_events(
    payloads: list,
    *,
    received_at: datetime,
    policy: TimestampPolicy,
    send_event: str,
    inherited: Inherited = Inherited(),
    occurrences: Occurrences | None = None,
) -> tuple[list[EventRow], list[Rejection]]:
    """Validate and normalise each payload; return the rows and the rejections, by index."""
    rows: list[EventRow] = []
    rejections: list[Rejection] = []
    for index, payload in enumerate(payloads):
        try:
            event = decode_event(payload)
            rows.append(
                _normalise(
                    event,
                    index=index,
                    received_at=received_at,
                    policy=policy,
                    send_event=send_event,
                    inherited=inherited,
                    occurrences=occurrences,
                )
            )
        except Invalid as invalid:
            rejections.append(Rejection(index, invalid.field, invalid.reason))
    return rows, rejections


def _identifier(value: str | int | None, name: str) -> str:
    if value is None or isinstance(value, bool):
        return ""
    text = str(value).strip()
    if len(text) > limits.MAX_ID_CHARS:
        raise Invalid(name, f"is longer than {limits.MAX_ID_CHARS} characters")
    return text


def _normalise(
    event: SegmentEvent,
    *,
    index: int,
    received_at: datetime,
    policy: TimestampPolicy,
    send_event: str,
    inherited: Inherited,
    occurrences: Occurrences | None,
) -> EventRow:
    kind = inherited.type if inherited.force_type else (event.type or inherited.type)
    if not kind:
        raise Invalid("type", "is required: one of track, identify, page, screen")
    kind = kind.lower()
    if kind not in SUPPORTED_TYPES:
        raise Invalid("type", f"{kind!r} is not supported; use track, identify, page or screen")

    user_id = _identifier(event.userId, "userId")
    anonymous_id = _identifier(event.anonymousId, "anonymousId")
    if "\x00" in user_id or "\x00" in anonymous_id:
        raise Invalid("userId" if "\x00" in user_id else "anonymousId", _NUL)
    if not user_id and not anonymous_id:
        raise Invalid("userId", "userId or anonymousId is required")

    properties = event.properties if event.properties is not None else {}
    context = _merged(inherited.context, event.context) if inherited.context else event.context
    traits: dict[str, Any] = {}
    if context and isinstance(context.get("traits"), dict):
        traits.update(context["traits"])
    if kind == "identify" and event.traits:
        traits.update(event.traits)

    timestamp = _time(event.timestamp, "timestamp")
    original_timestamp = _time(event.originalTimestamp, "originalTimestamp")
    sent_at = _time(event.sentAt, "sentAt") or inherited.sent_at
    occurred_at, time_field = event_time(
        timestamp=timestamp,
        original_timestamp=original_timestamp,
        sent_at=sent_at,
        received_at=received_at,
    )
    problem = out_of_bounds(occurred_at, received_at=received_at, policy=policy)
    if problem:
        raise Invalid(time_field, problem)

    if kind == "identify":
        if traits:
            _json_without_nul(traits, "traits")
        return EventRow(
            index=index,
            external_id=user_id or anonymous_id,
            anonymous_id=anonymous_id,
            name=None,
            occurred_at=occurred_at,
            properties={},
            traits=traits,
            message_key="",
            dedup_key="",
        )

    if kind == "track":
        name = event.event.strip() if isinstance(event.event, str) else ""
        if not name:
            raise Invalid("event", "is required for track")
    else:
        name = STORED_TYPES[kind]
        # A page's or screen's own name and category are Segment top-level fields; keep them.
        if event.name and "name" not in properties:
            properties = {**properties, "name": event.name}
        if event.category and "category" not in properties:
            properties = {**properties, "category": event.category}
    if len(name) > limits.MAX_EVENT_NAME_CHARS:
        raise Invalid("event", f"is longer than {limits.MAX_EVENT_NAME_CHARS} characters")
    if "\x00" in name:
        raise Invalid("event", _NUL)
    properties_json = _json_without_nul(properties, "properties")
    if traits:
        _json_without_nul(traits, "context.traits")

    row = EventRow(
        index=index,
        external_id=user_id or anonymous_id,
        anonymous_id=anonymous_id,
        name=name,
        occurred_at=occurred_at,
        properties=properties,
        traits=traits,
        message_key=_message_key(properties),
        dedup_key="",
        properties_json=properties_json,
    )
    if row.message_key and name == send_event:
        _message_description(row)

    message_id = _identifier(event.messageId, "messageId")
    if "\x00" in message_id:
        raise Invalid("messageId", _NUL)
    if message_id:
        row.dedup_key = message_id
    else:
        # The time the sender gave, not one computed from our clock, so retries hash alike.
        key = derived_key(
            kind=kind,
            user_id=user_id,
            anonymous_id=anonymous_id,
            name=name,
            basis_time=timestamp or original_timestamp or occurred_at,
            properties=properties,
        )
        row.dedup_key = occurrences.number(key) if occurrences is not None else key
    return row


def _merged(outer: dict[str, Any], inner: dict[str, Any] | None) -> dict[str, Any]:
    """Merge an item's context into its batch's, one level deep (so traits merge too)."""
    merged = dict(outer)
    for key, value in (inner or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _time(value: str | float | datetime | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise Invalid(name, f"{value!r} is not an ISO 8601 time") from None


def _message_key(properties: dict[str, Any]) -> str:
    value = properties.get("message_id")
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid("properties.message_id", "must be a string")
    key = str(value).strip()
    if len(key) > limits.MAX_MESSAGE_KEY_CHARS:
        raise Invalid(
            "properties.message_id", f"is longer than {limits.MAX_MESSAGE_KEY_CHARS} characters"
        )
    return key


def _message_description(row: EventRow) -> None:
    """Read what a send event says about its message: text, channel and labels."""
    properties = row.properties
    text = properties.get("text")
    if text is not None and not isinstance(text, str):
        raise Invalid("properties.text", "must be a string")
    channel = properties.get("channel")
    labels = properties.get("labels")
    normalised: dict[str, list[str]] = {}
    if labels is not None:
        if not isinstance(labels, dict):
            raise Invalid(
                "properties.labels",
                "must be an object from label set to slug or list of slugs, "
                'e.g. {"tone": "playful"}',
            )
        for set_slug, slugs in labels.items():
            if isinstance(slugs, str):
                slugs = [slugs]
            if not isinstance(slugs, list) or not all(
                isinstance(s, str) and slugify(s) for s in slugs
            ):
                raise Invalid(f"properties.labels.{set_slug}", "must be a slug or a list of slugs")
            if not slugify(set_slug):
                raise Invalid("properties.labels", "label set names must not be empty")
            normalised[set_slug] = slugs
    row.message_text = text or ""
    row.message_channel = channel if isinstance(channel, str) else ""
    row.message_labels = normalised
