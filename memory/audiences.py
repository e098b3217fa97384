"""The trait filter: who, by their traits, a campaign (and later a segment) is about.

Defined once, here: conditions on `Customer.traits` combined with AND, each one of

    {"trait": "gender", "equals": "F"}                    equality (a string, number or boolean)
    {"trait": "city", "in": ["Paris", "Lyon"]}            membership in a list
    {"trait": "income", "min": 50000, "max": 90000}       a range of numbers (either end optional)
    {"trait": "became_member_on", "min": "2017-01-01"}    a range of ISO dates or date-times

stored as ``{"all": [condition, ...]}`` (``{}``: everyone). The same JSON arrives from a form
or the API; `trait_filter_parse` turns it into a frozen `TraitFilter` or says which condition
is wrong and why, and `trait_filter_q` turns that into a query on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Literal

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import JSONField, Q, Value
from django.db.models.fields.json import (
    KeyTextTransform,
    KeyTransform,
    KeyTransformExact,
    KeyTransformGte,
    KeyTransformLte,
)
from django.db.models.lookups import GreaterThanOrEqual, LessThan, LessThanOrEqual

from campaigns.models import Workspace
from memory.models import Customer
from memory.scoring.traits import conditions_match

MAX_CONDITIONS = 20
MAX_VALUES = 200
TRAITS_SAMPLE = 20_000
# Open ends of a numeric range. Both ends are always compared, so a value of another JSON type
# (a string, a boolean, null) never falls inside: jsonb orders types apart on PostgreSQL, and
# SQLite orders text after every number.
NUMBER_FLOOR = -1e300
NUMBER_CEILING = 1e300

Kind = Literal["number", "date"]
Operator = Literal["equals", "in", "range"]
OPERATOR_KEYS = {"equals": "equals", "in": "in", "min": "range", "max": "range"}


@dataclass(frozen=True)
class TraitCondition:
    """One condition on one trait."""

    trait: str
    operator: Operator
    values: tuple = ()
    low: float | str | None = None
    high: float | str | None = None
    kind: Kind | None = None

    def as_json(self) -> dict:
        if self.operator == "equals":
            return {"trait": self.trait, "equals": self.values[0]}
        if self.operator == "in":
            return {"trait": self.trait, "in": list(self.values)}
        ends = {"min": self.low, "max": self.high}
        return {"trait": self.trait, **{k: v for k, v in ends.items() if v is not None}}


@dataclass(frozen=True)
class TraitFilter:
    """Conditions on customer traits, all of which a customer must meet; none: everyone."""

    conditions: tuple[TraitCondition, ...] = ()

    @property
    def is_everyone(self) -> bool:
        return not self.conditions

    def as_json(self) -> dict:
        return {"all": [c.as_json() for c in self.conditions]} if self.conditions else {}

    def traits(self) -> set[str]:
        return {c.trait for c in self.conditions}

    def matches(self, traits: dict) -> bool:
        """Tell whether one customer's traits meet the filter, as `trait_filter_q` would."""
        return conditions_match(self.conditions, traits)

    def describe(self) -> str:
        """Say the conditions in a line, e.g. 'plan = "pro" and income 50000 to 90000'."""
        if not self.conditions:
            return "everyone"
        return " and ".join(_describe(c) for c in self.conditions)


def _describe(condition: TraitCondition) -> str:
    if condition.operator == "equals":
        return f"{condition.trait} = {json.dumps(condition.values[0])}"
    if condition.operator == "in":
        return f"{condition.trait} in {json.dumps(list(condition.values))}"
    low, high = condition.low, condition.high
    if low is not None and high is not None:
        return (
            f"{condition.trait} {low:g} to {high:g}"
            if condition.kind == "number"
            else (f"{condition.trait} {low} to {high}")
        )
    if low is not None:
        return (
            f"{condition.trait} ≥ {low:g}"
            if condition.kind == "number"
            else (f"{condition.trait} from {low}")
        )
    return (
        f"{condition.trait} ≤ {high:g}"
        if condition.kind == "number"
        else (f"{condition.trait} until {high}")
    )


TRAIT_FILTER_HELP = (
    'Conditions on customer traits, all of which must hold, e.g. {"all": [{"trait": "gender", '
    '"equals": "F"}, {"trait": "income", "min": 50000}, {"trait": "became_member_on", "min": '
    '"2017-01-01"}, {"trait": "city", "in": ["Paris", "Lyon"]}]}. Empty: everyone.'
)


def trait_filter_field(*, required: bool = False, help_text: str = TRAIT_FILTER_HELP, **kwargs):
    """Return the form field every trait filter is typed in (JSON; the services parse it)."""
    return forms.JSONField(
        required=required,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=help_text,
        **kwargs,
    )


def _invalid(path: str, reason: str) -> ValidationError:
    return ValidationError(f"{path}: {reason}", code="invalid_trait_filter")


def _scalar(value, path: str):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    raise _invalid(path, f"{value!r} is not a string, finite number, boolean or null.")


def _range_end(value, path: str) -> tuple[Kind, float | str]:
    """Return an end's kind and its normalised value (a float, or an ISO date or date-time)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return "number", float(value)
    if isinstance(value, str):
        try:
            return "date", date.fromisoformat(value).isoformat()
        except ValueError:
            pass
        try:
            return "date", datetime.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise _invalid(path, f"{value!r} is neither a number nor an ISO date (YYYY-MM-DD).")


def _condition(data, path: str) -> TraitCondition:
    if not isinstance(data, dict):
        raise _invalid(path, "a condition is an object with a 'trait' and an operator.")
    trait = data.get("trait")
    if not isinstance(trait, str) or not trait.strip():
        raise _invalid(f"{path}.trait", "name the trait (a non-empty string).")
    unknown = set(data) - {"trait", *OPERATOR_KEYS}
    if unknown:
        raise _invalid(path, f"unknown keys {sorted(unknown)}; use equals, in, or min/max.")
    operators = {OPERATOR_KEYS[key] for key in data if key in OPERATOR_KEYS}
    if len(operators) != 1:
        raise _invalid(path, "give exactly one of 'equals', 'in', or 'min'/'max'.")
    chosen = operators.pop()
    trait = trait.strip()
    if chosen == "equals":
        return TraitCondition(trait, "equals", (_scalar(data["equals"], f"{path}.equals"),))
    if chosen == "in":
        values = data["in"]
        if not isinstance(values, list) or not values:
            raise _invalid(f"{path}.in", "give a non-empty list of values.")
        if len(values) > MAX_VALUES:
            raise _invalid(f"{path}.in", f"at most {MAX_VALUES} values.")
        return TraitCondition(
            trait, "in", tuple(_scalar(v, f"{path}.in[{i}]") for i, v in enumerate(values))
        )
    ends = {key: data.get(key) for key in ("min", "max")}
    parsed = {key: _range_end(v, f"{path}.{key}") for key, v in ends.items() if v is not None}
    if not parsed:
        raise _invalid(path, "a range needs 'min', 'max' or both.")
    kinds = {kind for kind, _ in parsed.values()}
    if len(kinds) > 1:
        raise _invalid(path, "'min' and 'max' must both be numbers or both ISO dates.")
    low = parsed["min"][1] if "min" in parsed else None
    high = parsed["max"][1] if "max" in parsed else None
    if low is not None and high is not None and low > high:
        raise _invalid(f"{path}.max", f"{ends['max']!r} is below min {ends['min']!r}.")
    return TraitCondition(trait, "range", low=low, high=high, kind=kinds.pop())


def trait_filter_parse(data, *, workspace: Workspace | None = None) -> TraitFilter:
    """Return the trait filter the JSON describes; raise ValidationError naming the bad part.

    With a workspace, every trait must also have been seen on its customers (a sample).
    """
    if data in (None, "", {}, []):
        return TraitFilter()
    if isinstance(data, list):
        data = {"all": data}
    if not isinstance(data, dict) or set(data) != {"all"}:
        raise _invalid("audience", 'expected {"all": [conditions]} or a list of conditions.')
    items = data["all"]
    if not isinstance(items, list):
        raise _invalid("all", "expected a list of conditions.")
    if len(items) > MAX_CONDITIONS:
        raise _invalid("all", f"at most {MAX_CONDITIONS} conditions.")
    trait_filter = TraitFilter(tuple(_condition(item, f"all[{i}]") for i, item in enumerate(items)))
    if workspace is not None:
        trait_filter_check(trait_filter, seen=traits_seen(workspace=workspace))
    return trait_filter


def traits_seen(*, workspace: Workspace, sample: int = TRAITS_SAMPLE) -> dict[str, set[str]]:
    """Return the trait keys on a sample of the workspace's customers, with their value kinds."""
    rows = (
        Customer.objects.for_workspace(workspace)
        .order_by("-pk")
        .values_list("traits", flat=True)[:sample]
    )
    seen: dict[str, set[str]] = {}
    for traits in rows:
        for key, value in (traits if isinstance(traits, dict) else {}).items():
            seen.setdefault(key, set()).add(_kind_of(value))
    return seen


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        try:
            _range_end(value, "")
        except ValidationError:
            return "string"
        return "date"
    return "other"


def trait_filter_check(trait_filter: TraitFilter, *, seen: dict[str, set[str]]) -> None:
    """Raise ValidationError for a condition on a trait never seen, or a range of the wrong kind."""
    for i, condition in enumerate(trait_filter.conditions):
        kinds = seen.get(condition.trait)
        if kinds is None:
            known = ", ".join(sorted(seen)[:20]) or "none yet"
            raise _invalid(
                f"all[{i}].trait",
                f"no customer has a trait {condition.trait!r} (traits seen: {known}).",
            )
        if condition.operator == "range" and condition.kind not in kinds:
            raise _invalid(
                f"all[{i}]",
                f"{condition.trait!r} holds {', '.join(sorted(kinds))} values, "
                f"not {condition.kind}s: a {condition.kind} range would match no one.",
            )


def _json(value) -> Value:
    # Lookups built as expressions (not by keyword, which would split a trait named with
    # '__') need their right-hand side typed as JSON to be encoded like one.
    return Value(value, output_field=JSONField())


def _condition_q(condition: TraitCondition) -> Q:
    value = KeyTransform(condition.trait, "traits")
    if condition.operator == "equals":
        return Q(KeyTransformExact(value, _json(condition.values[0])))
    if condition.operator == "in":
        # OR of equalities: KeyTransformIn does not encode expressions on SQLite.
        return reduce(
            operator.or_, (Q(KeyTransformExact(value, _json(v))) for v in condition.values)
        )
    if condition.kind == "number":
        low = NUMBER_FLOOR if condition.low is None else condition.low
        high = NUMBER_CEILING if condition.high is None else condition.high
        return Q(KeyTransformGte(value, _json(low))) & Q(KeyTransformLte(value, _json(high)))
    # ISO dates compare as text; a date-only upper end includes that whole day.
    text = KeyTextTransform(condition.trait, "traits")
    q = Q(GreaterThanOrEqual(text, condition.low)) if condition.low is not None else Q()
    if condition.high is not None:
        if len(condition.high) == 10:
            next_day = (date.fromisoformat(condition.high) + timedelta(days=1)).isoformat()
            q &= Q(LessThan(text, next_day))
        else:
            q &= Q(LessThanOrEqual(text, condition.high))
    return q


def trait_filter_q(trait_filter: TraitFilter) -> Q:
    """Return a Q on Customer selecting those who meet every condition (empty: everyone)."""
    q = Q()
    for condition in trait_filter.conditions:
        q &= _condition_q(condition)
    return q


def customers_matching_count(*, workspace: Workspace, trait_filter: TraitFilter) -> int:
    """Return how many of the workspace's customers the filter selects."""
    return Customer.objects.for_workspace(workspace).filter(trait_filter_q(trait_filter)).count()


def customers_matching(*, workspace: Workspace, trait_filter: TraitFilter):
    """Return the workspace's customers the filter selects, by external id."""
    return (
        Customer.objects.for_workspace(workspace)
        .filter(trait_filter_q(trait_filter))
        .order_by("external_id")
    )
