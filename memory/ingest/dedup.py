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
    """Return `derived:` + SHA-256 of the event's canonical JSON.

    The canonical form is the JSON array [type, userId, anonymousId, event name, time,
    properties], with "" for a missing id, the time as UTC ISO 8601 with microseconds
    (`2024-05-01T12:00:00.000000+00:00`), object keys sorted, no whitespace, UTF-8.
    """
    canonical = _encode(
        [
            kind,
            user_id,
            anonymous_id,
            name,
            basis_time.astimezone(UTC).isoformat(timespec="microseconds"),
            properties,
        ]
    )
    return DERIVED_PREFIX + hashlib.sha256(canonical).hexdigest()


class Occurrences:
    """Number repeated keys within one file, so identical lines stay distinct but re-imports don't.

    The first copy keeps its key; the n-th identical copy (n >= 2) gets `#n` appended.
    """

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def number(self, key: str) -> str:
        self._seen[key] += 1
        count = self._seen[key]
        return key if count == 1 else f"{key}#{count}"
