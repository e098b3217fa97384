"""The trait filter: parsing with the path of a bad condition, checking against the traits seen,
and selecting customers by equality, membership and numeric or date ranges."""

import pytest
from django.core.exceptions import ValidationError

from memory.audiences import (
    TraitFilter,
    customers_matching_count,
    trait_filter_parse,
    trait_filter_q,
)
from memory.models import Customer

PEOPLE = {
    "ann": {"gender": "F", "age": 34, "income": 72000, "became_member_on": "2017-05-01"},
    "bob": {"gender": "M", "age": 51, "income": 48000, "became_member_on": "2016-01-20"},
    "cyd": {"gender": "O", "age": 28, "became_member_on": "2018-07-15"},
    "dee": {"gender": "F", "age": "unknown", "income": 90000},
    "eve": {},
}


@pytest.fixture
def people(workspace):
    Customer.objects.bulk_create(
        Customer(workspace=workspace, external_id=name, traits=traits)
        for name, traits in PEOPLE.items()
    )
    return workspace


def matching(workspace, data) -> list[str]:
    trait_filter = trait_filter_parse(data)
    return sorted(
        Customer.objects.for_workspace(workspace)
        .filter(trait_filter_q(trait_filter))
        .values_list("external_id", flat=True)
    )


def test_it_selects_by_equality_membership_and_ranges_combined_with_and(people):
    assert matching(people, {"all": [{"trait": "gender", "equals": "F"}]}) == ["ann", "dee"]
    assert matching(people, [{"trait": "gender", "in": ["M", "O"]}]) == ["bob", "cyd"]
    assert matching(people, [{"trait": "age", "min": 30}]) == ["ann", "bob"]
    assert matching(people, [{"trait": "age", "max": 34}]) == ["ann", "cyd"]
    assert matching(people, [{"trait": "age", "min": 30, "max": 40}]) == ["ann"]
    both = [{"trait": "gender", "equals": "F"}, {"trait": "income", "min": 80000}]
    assert matching(people, both) == ["dee"]


def test_it_ranges_iso_dates_with_a_whole_last_day(people):
    joined = [{"trait": "became_member_on", "min": "2016-06-01", "max": "2017-05-01"}]
    assert matching(people, joined) == ["ann"]
    assert matching(people, [{"trait": "became_member_on", "max": "2016-12-31"}]) == ["bob"]


def test_it_selects_everyone_when_empty(people):
    assert trait_filter_parse({}) == TraitFilter()
    assert customers_matching_count(workspace=people, trait_filter=TraitFilter()) == 5


def test_it_counts_only_the_workspace_customers(people, other_workspace):
    Customer.objects.create(workspace=other_workspace, external_id="zed", traits={"gender": "F"})
    only_women = trait_filter_parse([{"trait": "gender", "equals": "F"}])
    assert customers_matching_count(workspace=people, trait_filter=only_women) == 2


def test_it_round_trips_through_its_json():
    data = {
        "all": [
            {"trait": "gender", "equals": "F"},
            {"trait": "city", "in": ["Paris", "Lyon"]},
            {"trait": "age", "min": 30.0},
        ]
    }
    assert trait_filter_parse(data).as_json() == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"any": []}, "audience:"),
        ([{"equals": "F"}], "all[0].trait:"),
        ([{"trait": "age", "min": "soon"}], "all[0].min: 'soon' is neither a number"),
        ([{"trait": "age", "min": 40, "max": 30}], "all[0].max: 30 is below min 40"),
        ([{"trait": "age", "min": 3, "max": "2017-01-01"}], "both be numbers or both ISO dates"),
        ([{"trait": "a", "equals": 1}, {"trait": "b", "in": []}], "all[1].in: give a non-empty"),
        ([{"trait": "age", "equals": 1, "in": [1]}], "all[0]: give exactly one"),
        ([{"trait": "age", "between": [1, 2]}], "all[0]: unknown keys ['between']"),
    ],
)
def test_it_names_the_bad_condition_and_why(data, message):
    with pytest.raises(ValidationError) as raised:
        trait_filter_parse(data)
    assert message in raised.value.messages[0]


def test_it_refuses_traits_never_seen_and_ranges_of_the_wrong_kind(people):
    with pytest.raises(ValidationError, match=r"all\[0\].trait: no customer has a trait 'city'"):
        trait_filter_parse([{"trait": "city", "equals": "Paris"}], workspace=people)
    with pytest.raises(ValidationError, match=r"'gender' holds string values, not numbers"):
        trait_filter_parse([{"trait": "gender", "min": 3}], workspace=people)
    accepted = trait_filter_parse([{"trait": "age", "min": 3}], workspace=people)
    assert accepted.traits() == {"age"}
