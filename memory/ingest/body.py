"""Read an HTTP request's events within Segment's limits, without decoding more than needed.

Batch items are kept as raw JSON (msgspec.Raw), so each one's size is known for free and one
bad item cannot spoil the others.
"""

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from django.core.exceptions import RequestDataTooBig

from memory.ingest import limits, structure
from memory.ingest.limits import LimitExceeded
from memory.ingest.timestamps import parse_time


class MalformedBody(Exception):
    """The body is not the JSON this endpoint takes; the message says why."""


class _Batch(msgspec.Struct):
    batch: list[msgspec.Raw]
    context: dict[str, Any] | None = None
    sentAt: str | float | None = None


class _WriteKey(msgspec.Struct):
    writeKey: str | None = None


@dataclass(frozen=True)
class SegmentBatch:
    items: list[msgspec.Raw]
    context: dict[str, Any] | None
    sent_at: datetime | None


_CACHE_ATTRIBUTE = "_primer_ingest_body"


def read_body(request) -> bytes:
    """Return the body (gunzipped if sent so), or raise LimitExceeded past 500 KB."""
    django_request = getattr(request, "_request", request)
    cached = getattr(django_request, _CACHE_ATTRIBUTE, None)
    if cached is not None:
        return cached
    try:
        length = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limits.MAX_REQUEST_BYTES:
        raise LimitExceeded("request_size", limits.request_too_large(length))
    try:
        body = django_request.body
    except RequestDataTooBig:
        raise LimitExceeded("request_size", limits.request_too_large(length)) from None
    if django_request.META.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
        body = _gunzip(body)
    if len(body) > limits.MAX_REQUEST_BYTES:
        raise LimitExceeded("request_size", limits.request_too_large(len(body)))
    setattr(django_request, _CACHE_ATTRIBUTE, body)
    return body


def _gunzip(body: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        # Stop one byte past the limit: a small bomb must not inflate in memory.
        data = inflater.decompress(body, limits.MAX_REQUEST_BYTES + 1)
    except zlib.error as error:
        raise MalformedBody(f"the body is not valid gzip: {error}") from None
    if len(data) > limits.MAX_REQUEST_BYTES or inflater.unconsumed_tail:
        raise LimitExceeded(
            "request_size",
            f"request body inflates to more than the 500 KB ({limits.MAX_REQUEST_BYTES:,} "
            "bytes) limit per request",
        )
    return data


def write_key_in(body: bytes) -> str | None:
    """Return the `writeKey` a body carries at its top level, if any."""
    try:
        return msgspec.json.decode(body, type=_WriteKey).writeKey or None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    except RecursionError:  # an item nests too deep: read the top level alone
        cut = structure.split(body, "batch") or structure.split(body, "")
        raw = cut.values.get("writeKey") if cut else None
        try:
            return msgspec.json.decode(raw, type=str | None) if raw else None
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None


def _malformed(error: Exception) -> MalformedBody:
    message = str(error)
    if isinstance(error, msgspec.ValidationError):
        return MalformedBody(f"unexpected JSON: {message}")
    return MalformedBody(f"malformed JSON: {message}")


def single_event(body: bytes) -> msgspec.Raw:
    """Return the body as one event, checked to be a JSON object within 32 KB."""
    if len(body) > limits.MAX_EVENT_BYTES:
        raise LimitExceeded("event_size", limits.event_too_large(len(body)))
    try:
        raw = msgspec.json.decode(body, type=msgspec.Raw)
    except msgspec.DecodeError as error:
        raise _malformed(error) from None
    except RecursionError:  # the event decoder names the field nesting too deep
        raw = msgspec.Raw(body.strip())
    if not bytes(raw).lstrip().startswith(b"{"):
        raise MalformedBody("unexpected JSON: the body must be one JSON object")
    return raw


def segment_batch(body: bytes) -> SegmentBatch:
    """Return a Segment batch's items, context and sentAt, within the batch limits."""
    try:
        envelope = msgspec.json.decode(body, type=_Batch)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise _malformed(error) from None
    except RecursionError:
        envelope = _batch_item_by_item(body)
    if len(envelope.batch) > limits.MAX_BATCH_EVENTS:
        raise LimitExceeded("batch_length", limits.batch_too_long(len(envelope.batch)))
    for item in envelope.batch:
        size = len(memoryview(item))
        if size > limits.MAX_EVENT_BYTES:
            raise LimitExceeded("event_size", limits.event_too_large(size))
    try:
        sent_at = parse_time(envelope.sentAt) if envelope.sentAt not in (None, "") else None
    except ValueError:
        raise MalformedBody(f"sentAt: {envelope.sentAt!r} is not an ISO 8601 time") from None
    return SegmentBatch(items=envelope.batch, context=envelope.context, sent_at=sent_at)


def _batch_item_by_item(body: bytes) -> _Batch:
    """Read a batch one of whose items nests past msgspec's limit: each item on its own."""
    cut = structure.split(body, "batch")
    if cut is None or "batch" not in cut.values:
        raise MalformedBody(f"malformed JSON: the body {structure.TOO_DEEP}")
    shell = b"{%s}" % b",".join(
        msgspec.json.encode(name) + b":" + (b"[]" if name == "batch" else raw)
        for name, raw in cut.values.items()
    )
    try:
        envelope = msgspec.json.decode(shell, type=_Batch)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise _malformed(error) from None
    except RecursionError:
        raise MalformedBody(f"malformed JSON: the batch's context {structure.TOO_DEEP}") from None
    envelope.batch = [msgspec.Raw(item) for item in cut.items]
    return envelope


def native_events(body: bytes) -> list[msgspec.Raw]:
    """Return the events of a native request: one JSON object, or a list of them."""
    stripped = body.lstrip()
    try:
        if stripped.startswith(b"["):
            try:
                items = msgspec.json.decode(body, type=list[msgspec.Raw])
            except RecursionError:  # one item nests too deep: cut the list item by item
                cut = structure.split(body, None)
                if cut is None:
                    raise MalformedBody(f"malformed JSON: the body {structure.TOO_DEEP}") from None
                items = [msgspec.Raw(item) for item in cut.items]
        else:
            items = [single_event(body)]
    except msgspec.DecodeError as error:
        raise _malformed(error) from None
    if len(items) > limits.MAX_BATCH_EVENTS:
        raise LimitExceeded("batch_length", limits.batch_too_long(len(items)))
    return items
