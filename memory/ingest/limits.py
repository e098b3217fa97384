"""Segment's HTTP API limits, which Primer enforces the same way."""

MAX_EVENT_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2_500

# Column widths of the tables the values land in.
MAX_ID_CHARS = 255
MAX_EVENT_NAME_CHARS = 200
MAX_MESSAGE_KEY_CHARS = 200
MAX_DEDUP_KEY_CHARS = 255


class LimitExceeded(Exception):
    """A request broke one of the limits; the message names which."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit
        self.message = message


def event_too_large(size: int) -> str:
    return f"event is {size:,} bytes; the limit is 32 KB ({MAX_EVENT_BYTES:,} bytes) per event"


def request_too_large(size: int) -> str:
    return (
        f"request body is {size:,} bytes; the limit is 500 KB ({MAX_REQUEST_BYTES:,} bytes) "
        "per request"
    )


def batch_too_long(count: int) -> str:
    return f"batch has {count:,} events; the limit is {MAX_BATCH_EVENTS:,} events per batch"
