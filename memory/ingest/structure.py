"""See a JSON document's shape without decoding it: where items begin and end, how deep it nests.

msgspec refuses a whole body when one value nests past its recursion limit, and Python's
recursion would fail further on; these scans (C regular expressions over the raw bytes, never
decoding a string) let one hostile item cost only that item.
"""

import re
from dataclasses import dataclass, field

# Levels of arrays and objects an event may nest, counting the event object itself.
MAX_DEPTH = 64

# A string (escapes included; any byte, even invalid UTF-8, inside) or one structural byte.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]', re.DOTALL)


TOO_DEEP = f"is nested deeper than {MAX_DEPTH} levels of arrays and objects"


def deepest(raw: bytes) -> tuple[int, str]:
    """Return how deep the JSON nests (a flat object is 1) and the top-level key holding that."""
    depth = deepest_depth = 0
    key = where = ""
    expect_key = False
    for match in _TOKEN.finditer(raw):
        token = match.group()
        first = token[:1]
        if first in b"[{":
            depth += 1
            if depth > deepest_depth:
                deepest_depth, where = depth, key
            expect_key = first == b"{" and depth == 1
        elif first in b"]}":
            depth -= 1
        elif first == b",":
            expect_key = depth == 1
        elif first == b":":
            expect_key = False
        elif expect_key:
            key = token[1:-1].decode(errors="replace")
    return deepest_depth, where


def nests_too_deep(raw: bytes) -> str | None:
    """Return the top-level field nesting past MAX_DEPTH ("" for the event itself), else None."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:  # cheap: most events stop here
        return None
    depth, where = deepest(raw)
    return where if depth > MAX_DEPTH else None


@dataclass
class Split:
    """A body cut at its top level: the items of one array, and the other top-level values."""

    items: list[bytes] = field(default_factory=list)
    values: dict[str, bytes] = field(default_factory=dict)


def split(body: bytes, key: str | None) -> Split | None:
    """Cut the array at top-level `key` of an object (or the top-level array) into its items.

    Returns None when the body is not that shape (unbalanced, or not an object/array at all).
    Each item and value is raw JSON to decode on its own.
    """
    stripped = body.lstrip()
    if not stripped.startswith(b"{" if key is not None else b"["):
        return None
    items_depth = 1 if key is None else 2
    result = Split()
    depth = 0
    current = ""
    expect_key = False
    value_start = item_start = -1
    in_items = False
    for match in _TOKEN.finditer(body):
        token = match.group()
        first = token[:1]
        if first in b"[{":
            depth += 1
            if first == b"[" and depth == items_depth and (key is None or current == key):
                in_items, item_start = True, match.end()
            expect_key = first == b"{" and depth == 1 and key is not None
        elif first in b"]}":
            if in_items and depth == items_depth and first == b"]":
                _add_item(result, body[item_start : match.start()])
                in_items = False
            depth -= 1
            if depth == 0 and key is not None and value_start >= 0:
                result.values[current] = body[value_start : match.start()].strip()
                value_start = -1
            if depth < 0:
                return None
        elif first == b",":
            if in_items and depth == items_depth:
                _add_item(result, body[item_start : match.start()])
                item_start = match.end()
            elif depth == 1 and key is not None:
                result.values[current] = body[value_start : match.start()].strip()
                value_start, expect_key = -1, True
        elif first == b":":
            if depth == 1 and key is not None:
                value_start, expect_key = match.end(), False
        elif expect_key:
            current = token[1:-1].decode(errors="replace")
            expect_key = False
    if depth != 0:
        return None
    return result


def _add_item(result: Split, item: bytes) -> None:
    item = item.strip()
    if item:
        result.items.append(item)
