"""When an event happened: Segment's rule, and Primer's bounds on implausible times."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings


@dataclass(frozen=True)
class TimestampPolicy:
    """How far from its receipt an event's time may lie; None means no bound."""

    max_past: timedelta | None
    max_future: timedelta | None

    @classmethod
    def for_api(cls) -> "TimestampPolicy":
        """Return the live-traffic policy from settings (5 years back, 24 hours ahead)."""
        past_days = settings.PRIMER_INGEST_MAX_PAST_DAYS
        return cls(
            max_past=timedelta(days=past_days) if past_days else None,
            max_future=timedelta(hours=settings.PRIMER_INGEST_MAX_FUTURE_H),
        )

    @classmethod
    def for_import(cls, *, max_past_days: int | None = None) -> "TimestampPolicy":
        """Return the file-import policy: history of any age, still nothing from the future."""
        return cls(
            max_past=timedelta(days=max_past_days) if max_past_days else None,
            max_future=timedelta(hours=settings.PRIMER_INGEST_MAX_FUTURE_H),
        )


def as_utc(value: datetime) -> datetime:
    """Read a time without an offset as UTC, and express any time in UTC."""
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
            f"{occurred_at.isoformat()} is more than {_span(policy.max_future)} after the "
            f"event was received ({received_at.isoformat()})"
        )
    if policy.max_past is not None and occurred_at < received_at - policy.max_past:
        return (
            f"{occurred_at.isoformat()} is more than {_span(policy.max_past)} before the "
            f"event was received ({received_at.isoformat()})"
        )
    return None


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 48:
        return f"{hours:g} hours"
    return f"{hours / 24:g} days"
