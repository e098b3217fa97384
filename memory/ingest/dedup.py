"""Dedup keys: the sender's messageId, or a stable hash of what the event says."""

import hashlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec

DERIVED_PREFIX = "derived:"
_encode = msgspec.json.Encoder(order="sorted").encode


def derived_key(
    *,
    kind: str,
    user_id: str,
    anonymous_id: str,
    name: str,
    basis_time: datetime,
    properties: dict[str, Any],
) -> str:
    """Return `derived:<time>:<hash>`, the time first so keys of a stream arrive in order.

    <time> is the UTC time as `YYYYMMDDTHHMMSS.ffffff`; <hash> the first 40 hex digits
    (160 bits) of the SHA-256 of the canonical JSON array [type, userId, anonymousId,
    event name, time, properties]: "" for a missing id, the time as UTC ISO 8601 with
    microseconds (`2024-05-01T12:00:00.000000+00:00`), object keys sorted, no whitespace, UTF-8.
    """
    utc = basis_time if basis_time.tzinfo is UTC else basis_time.astimezone(UTC)
    canonical = _encode(
        [kind, user_id, anonymous_id, name, utc.isoformat(timespec="microseconds"), properties]
    )
    digest = hashlib.sha256(canonical).hexdigest()[:40]
    return f"{DERIVED_PREFIX}{utc:%Y%m%dT%H%M%S.%f}:{digest}"


class Occurrences:
    """Number repeated keys within one file, so identical lines stay distinct but re-imports don't.

    The first copy keeps its key; the n-th identical copy (n >= 2) gets `#n` appended.
    """

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self.repeats = 0

    def number(self, key: str) -> str:
        self._seen[key] += 1
        count = self._seen[key]
        if count == 1:
            return key
        self.repeats += 1
        return f"{key}#{count}"
