"""GET /api/v1/customers/{id}/next-best: the stored list over the API, scoped and documented."""

import io

import pytest
from django.core.management import call_command

from campaigns.tenancy.services import api_key_create
from memory.models import Customer
from memory.next_best import next_best_for
from tests.memory.engine_fixtures import load_synthetic, recompute_here


@pytest.fixture
def stored(workspace):
    load_synthetic(workspace, customers=40, events=4_000)
    recompute_here(workspace=workspace)


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_it_answers_a_customers_next_best_messages(client, read_key, stored):
    response = client.get("/api/v1/customers/c3/next-best?limit=4", **bearer(read_key))
    assert response.status_code == 200
    answer = response.json()
    assert answer["customer"] == "c3" and answer["nothing_now"] == ""
    assert answer["excluded"] == [] and answer["cold_start"] is False and answer["as_of"]
    assert [offer["rank"] for offer in answer["offers"]] == [1, 2, 3, 4]
    scores = [offer["score"] for offer in answer["offers"]]
    assert scores == sorted(scores, reverse=True)
    assert all(offer["drawn"] is None and 0 < offer["p_goal"] < 1 for offer in answer["offers"])


def test_it_explores_the_same_way_for_the_same_seed(client, read_key, stored):
    def keys(seed: int) -> list[str]:
        url = f"/api/v1/customers/c3/next-best?explore=1&seed={seed}&limit=20"
        answer = client.get(url, **bearer(read_key)).json()
        assert answer["explore"] is True and all(o["drawn"] is not None for o in answer["offers"])
        return [offer["key"] for offer in answer["offers"]]

    assert keys(11) == keys(11)
    assert len({tuple(keys(seed)) for seed in range(8)}) > 1


def test_it_refuses_bad_parameters_naming_the_field(client, read_key, stored):
    for query, field in (("limit=0", "limit"), ("seed=-1", "seed"), ("explore=maybe", "explore")):
        response = client.get(f"/api/v1/customers/c3/next-best?{query}", **bearer(read_key))
        assert response.status_code == 400 and field in response.json(), query


def test_it_answers_404_for_unknown_or_other_workspaces_customers(
    client, read_key, other_workspace, stored
):
    unknown = client.get("/api/v1/customers/nobody/next-best", **bearer(read_key))
    assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]
    _, theirs = api_key_create(workspace=other_workspace, scopes=["read"])
    assert client.get("/api/v1/customers/c3/next-best", **bearer(theirs)).status_code == 404


def test_it_needs_the_read_scope(client, write_key, stored):
    assert client.get("/api/v1/customers/c3/next-best", **bearer(write_key)).status_code == 403
    assert client.get("/api/v1/customers/c3/next-best").status_code in (401, 403)


def test_it_says_plainly_when_there_is_no_recompute_yet(client, read_key, workspace):
    Customer.objects.create(workspace=workspace, external_id="early")
    response = client.get("/api/v1/customers/early/next-best", **bearer(read_key))
    assert response.status_code == 200
    answer = response.json()
    assert answer["offers"] == [] and "no recompute yet" in answer["nothing_now"]


def test_it_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/customers/{external_id}/next-best"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"explore", "seed", "limit"}
    assert "404" in operation["responses"]


def test_the_command_reads_the_stored_list(workspace, stored):
    out = io.StringIO()
    call_command("next_best", "--workspace", "acme", "--customer", "c3", "--limit", "3", stdout=out)
    ranked = [line.split()[-1] for line in out.getvalue().splitlines()[1:4]]
    stored_keys = [
        offer.key for offer in next_best_for(workspace=workspace, external_id="c3", limit=3).offers
    ]
    assert ranked == stored_keys
