"""TraitFilter.matches in Python selects exactly the customers trait_filter_q selects in SQL."""

import pytest

from memory.audiences import customers_matching, trait_filter_parse
from memory.models import Customer

TRAITS = [
    {"plan": "pro", "age": 30, "since": "2017-03-04"},
    {"plan": "free", "age": 30.0, "since": "2018-01-01T10:00:00"},
    {"plan": "pro", "age": "30", "since": "2016-12-31"},
    {"plan": None, "age": True, "vip": False},
    {"plan": "team", "age": 61.5, "since": 2017},
    {},
]
FILTERS = [
    {},
    {"all": [{"trait": "plan", "equals": "pro"}]},
    {"all": [{"trait": "plan", "equals": None}]},
    {"all": [{"trait": "age", "equals": 30}]},
    {"all": [{"trait": "age", "equals": True}]},
    {"all": [{"trait": "vip", "equals": False}]},
    {"all": [{"trait": "plan", "in": ["pro", "team"]}]},
    {"all": [{"trait": "age", "min": 18, "max": 40}]},
    {"all": [{"trait": "age", "min": 1}]},
    {"all": [{"trait": "since", "min": "2017-01-01", "max": "2017-12-31"}]},
    {"all": [{"trait": "since", "max": "2018-01-01"}]},
    {"all": [{"trait": "since", "min": "2017-01-01T00:00:00"}]},
    {"all": [{"trait": "plan", "equals": "pro"}, {"trait": "age", "max": 40}]},
]


@pytest.mark.parametrize("data", FILTERS)
def test_python_and_sql_agree(workspace, data):
    for i, traits in enumerate(TRAITS):
        Customer.objects.create(workspace=workspace, external_id=f"c{i}", traits=traits)
    trait_filter = trait_filter_parse(data)
    in_sql = set(
        customers_matching(workspace=workspace, trait_filter=trait_filter).values_list(
            "external_id", flat=True
        )
    )
    in_python = {f"c{i}" for i, traits in enumerate(TRAITS) if trait_filter.matches(traits)}
    assert in_python == in_sql
