"""Keep customer-supplied text as data: JSON-quoted, on one line, and length-limited.

A customer's traits, event names and properties, and message texts reach the prompt only through
these functions. JSON string quoting escapes quotes, backslashes and every control character, so a
value can neither close its quotes nor start a line of its own; the few Unicode line separators
JSON leaves raw are escaped too. Over-long values are cut, ending with an ellipsis in the quotes.
"""

import json
import math
import re
from json.encoder import encode_basestring  # JSON string quoting, in C

# Characters an LLM may read as a line break that json.dumps leaves as they are.
_SEPARATORS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_SEPARATOR_RE = re.compile("[\u0085\u2028\u2029]")
_SPACE_RE = re.compile(r"\s+")

TRAIT_KEY_LIMIT = 40
VALUE_LIMIT = 120
MESSAGE_TEXT_LIMIT = 160
ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """Return the text cut to at most `limit` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def quote(value: object, limit: int = VALUE_LIMIT) -> str:
    """Return the value as a JSON-quoted, length-limited string literal."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    quoted = encode_basestring(cut(text, limit))
    if "\u0085" in quoted or "\u2028" in quoted or "\u2029" in quoted:
        quoted = _SEPARATOR_RE.sub(lambda match: _SEPARATORS[match.group()], quoted)
    return quoted


def literal(value: object, limit: int = VALUE_LIMIT) -> str:
    """Return numbers and booleans as JSON literals, anything else quoted."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"  # NaN is not JSON
    return quote(value, limit)


def one_line(text: str, limit: int) -> str:
    """Return the marketer's short text (a label's phrase) on one line, length-limited."""
    return cut(_SPACE_RE.sub(" ", text).strip(), limit)
