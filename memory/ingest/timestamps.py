"""When an event happened: Segment's rule, and Primer's bounds on implausible times."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings


@dataclass(frozen=True)
class TimestampPolicy:
    """Which event times are plausible: not before `earliest`, not past receipt + `max_future`.

    No bound on age beyond that: replays and backfills legitimately send years-old events.
    """

    earliest: datetime | None
    max_future: timedelta | None

    @classmethod
    def from_settings(cls) -> "TimestampPolicy":
        """Return the policy in force: from 2000-01-01 to 24 hours after receipt by default."""
        return cls(
            earliest=datetime(settings.PRIMER_INGEST_EARLIEST_YEAR, 1, 1, tzinfo=UTC),
            max_future=timedelta(hours=settings.PRIMER_INGEST_MAX_FUTURE_H),
        )


_EPOCH_MS_THRESHOLD = 100_000_000_000  # past this, a number is milliseconds, not seconds
# ISO 8601 as people write it, month and day not always zero-padded ("2015-2-02T00:30:08Z",
# as in Segment's own batch example).
_LOOSE_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|UTC|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


def parse_time(value: str | float | datetime) -> datetime:
    """Read a time: ISO 8601 (strict or loose), Unix seconds or milliseconds; naive means UTC.

    Raises ValueError when the value is none of these.
    """
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        seconds = value / 1000 if value > _EPOCH_MS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError) as error:
            raise ValueError(value) from error
    text = value.strip()
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return parse_time(float(text))
    match = _LOOSE_ISO.fullmatch(text)
    if match is None:
        raise ValueError(value)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    moment = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int((fraction or "0")[:6].ljust(6, "0")),
    )
    if offset and offset.upper() not in {"Z", "UTC"}:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment.replace(tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    """Read a time without an offset as UTC, and express any time in UTC."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def event_time(
    *,
    timestamp: datetime | None,
    original_timestamp: datetime | None,
    sent_at: datetime | None,
    received_at: datetime,
) -> tuple[datetime, str]:
    """Return when the event happened and the field that said so, as Segment computes it.

    `timestamp` wins; else the device's `originalTimestamp` corrected for its clock skew,
    `receivedAt - (sentAt - originalTimestamp)`; else `originalTimestamp` as given; else receipt.
    """
    if timestamp is not None:
        return as_utc(timestamp), "timestamp"
    if original_timestamp is not None:
        if sent_at is not None:
            return received_at - (as_utc(sent_at) - as_utc(original_timestamp)), (
                "originalTimestamp"
            )
        return as_utc(original_timestamp), "originalTimestamp"
    return received_at, "receivedAt"


def out_of_bounds(
    occurred_at: datetime, *, received_at: datetime, policy: TimestampPolicy
) -> str | None:
    """Return why a time is implausible under the policy, or None when it is fine."""
    if policy.max_future is not None and occurred_at > received_at + policy.max_future:
        return (
            f"{occurred_at.isoformat()} is more than "
            f"{policy.max_future.total_seconds() / 3600:g} hours after the event was received "
            f"({received_at.isoformat()})"
        )
    if policy.earliest is not None and occurred_at < policy.earliest:
        return (
            f"{occurred_at.isoformat()} is before {policy.earliest.date().isoformat()}, "
            "the earliest time accepted (a device clock that was never set?)"
        )
    return None
