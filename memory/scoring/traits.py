"""Whether one customer's traits meet a trait filter, in Python, as its SQL does.

The same rules as memory/audiences.py's queries (docs/decisions/0251), for one customer at a
time where a query per customer would be wasteful (guardrails, override segments): equality is
on JSON values (a boolean is not a number, 30 is not "30"), a number range takes numbers only,
and a date range compares the value's text, a date-only upper end including that whole day.
Conditions are duck-typed (`trait`, `operator`, `values`, `low`, `high`, `kind`), so this module
needs nothing but the standard library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, timedelta

_MISSING = object()


def _same_json(left, right) -> bool:
    """Tell JSON equality: booleans and numbers are different types, 1 equals 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def condition_matches(condition, traits: dict) -> bool:
    """Tell whether the traits meet one condition (a missing trait meets none)."""
    value = traits.get(condition.trait, _MISSING) if isinstance(traits, dict) else _MISSING
    if value is _MISSING:
        return False
    if condition.operator in ("equals", "in"):
        return any(_same_json(value, wanted) for wanted in condition.values)
    if condition.kind == "number":
        if not _is_number(value):
            return False
        low_ok = condition.low is None or value >= condition.low
        return low_ok and (condition.high is None or value <= condition.high)
    if value is None:
        return False  # SQL's ->> of a JSON null is NULL: no comparison holds
    text = _text(value)
    if condition.low is not None and text < condition.low:
        return False
    if condition.high is None:
        return True
    if len(condition.high) == 10:
        next_day = (date.fromisoformat(condition.high) + timedelta(days=1)).isoformat()
        return text < next_day
    return text <= condition.high


def conditions_match(conditions: Iterable, traits: dict) -> bool:
    """Tell whether the traits meet every condition (none: everyone does)."""
    return all(condition_matches(condition, traits) for condition in conditions)
