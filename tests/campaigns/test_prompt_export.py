"""Exporting prompts: one customer's, every customer's streamed, and the command."""

import csv
import io
import json
import tracemalloc

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.prompts.export import encode_chunks
from campaigns.prompts.selectors import CHUNK_SIZE, prompt_choice, prompt_chunks
from memory.models import Customer, CustomerLabelWeight, CustomerState
from tests.campaigns.prompt_support import MEMORY_AT, label

pytestmark = pytest.mark.django_db


def auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def many_customers(workspace, count: int, start: int = 0) -> None:
    """Create customers with state and two label weights each, set-based."""
    Customer.objects.bulk_create(
        Customer(workspace=workspace, external_id=f"c{i:05d}", traits={"n": i})
        for i in range(start, start + count)
    )
    customers = Customer.objects.for_workspace(workspace).filter(
        external_id__gte=f"c{start:05d}", external_id__lt=f"c{start + count:05d}"
    )
    CustomerState.objects.bulk_create(
        CustomerState(
            workspace=workspace, customer=c, primed_score=0.2, last_recompute_at=MEMORY_AT
        )
        for c in customers
    )
    fast, cheap = label(workspace, "fast"), label(workspace, "cheap")
    CustomerLabelWeight.objects.bulk_create(
        CustomerLabelWeight(
            workspace=workspace,
            customer=c,
            label=found,
            alpha=5 + (c.pk % 7),
            beta=5,
            exposures=4,
            conversions=2,
            weight=share,
            weight_low=0,
            weight_high=1,
            evidence=10 + (c.pk % 7),
            lift=1,
            computed_at=MEMORY_AT,
        )
        for c in customers
        for found, share in ((fast, 0.6 if c.pk % 2 else 0.4), (cheap, 0.4 if c.pk % 2 else 0.6))
    )


def test_it_returns_one_customers_prompt_with_read_scope(client, read_key, rich_customer):
    response = client.get(reverse("api-customer-prompt", args=["cust-1"]), **auth(read_key))
    assert response.status_code == 200
    data = response.json()
    assert data["customer_id"] == "cust-1"
    assert data["template"] == "default" and data["template_version"] == 0
    assert data["memory_at"] == "2026-03-10T12:00:00Z"
    assert "convenience (strong evidence)" in data["prompt"]
    assert "context" not in data
    with_context = client.get(
        reverse("api-customer-prompt", args=["cust-1"]) + "?include_context=true", **auth(read_key)
    ).json()
    assert with_context["context"]["label_sets"][0]["labels"][0]["slug"] == "convenience"


def test_it_refuses_a_write_only_key_and_other_workspaces_customers(
    client, write_key, read_key, other_workspace, rich_customer
):
    url = reverse("api-customer-prompt", args=["cust-1"])
    assert client.get(url, **auth(write_key)).status_code == 403
    assert client.get(url).status_code in (401, 403)
    from campaigns.tenancy.services import api_key_create

    _, their_key = api_key_create(workspace=other_workspace, scopes=["read"])
    assert client.get(url, **auth(their_key)).status_code == 404


def test_it_answers_404_and_422_with_what_is_wrong(client, read_key, workspace, rich_customer):
    from campaigns.prompts.services import prompt_template_create

    url = reverse("api-customer-prompt", args=["cust-1"])
    assert (
        "No prompt template 'nope'"
        in client.get(url + "?template=nope", **auth(read_key)).json()["detail"]
    )
    bad = prompt_template_create(workspace=workspace, slug="bad", text="ok")
    bad.versions.update(text="{% if %}")
    response = client.get(url + "?template=bad", **auth(read_key))
    assert response.status_code == 422
    assert "syntax" in response.json()["detail"]


def test_it_streams_every_customers_prompt_once_as_json_lines(client, read_key, workspace):
    many_customers(workspace, 2000)
    response = client.get(reverse("api-prompts-export") + "?format=jsonl", **auth(read_key))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    pieces = [piece.decode() for piece in response.streaming_content]
    # One piece per chunk of customers: the response never holds more than one chunk.
    assert [piece.count("\n") for piece in pieces] == [CHUNK_SIZE, 2000 - CHUNK_SIZE]
    rows = [json.loads(line) for piece in pieces for line in piece.splitlines()]
    ids = [row["customer_id"] for row in rows]
    assert ids == [f"c{i:05d}" for i in range(2000)]
    assert all(row["memory_at"] == "2026-03-10T12:00:00Z" for row in rows)
    leads = {row["prompt"].split("responds to ")[1].split(" ")[0] for row in rows}
    assert leads == {"Fast", "Cheap"}


def test_it_streams_csv_with_a_header(client, read_key, workspace):
    many_customers(workspace, 30)
    response = client.get(reverse("api-prompts-export") + "?format=csv", **auth(read_key))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 30
    assert set(rows[0]) == {
        "customer_id",
        "template",
        "template_version",
        "memory_at",
        "content_hash",
        "prompt",
        "arm",
        "decision_id",
    }
    assert rows[0]["prompt"].startswith("You are helping Acme")


def test_it_refuses_an_unknown_export_format(client, read_key, workspace):
    response = client.get(reverse("api-prompts-export") + "?format=xml", **auth(read_key))
    assert response.status_code == 400
    assert "jsonl" in response.content.decode()


def test_it_reads_each_chunk_in_a_few_queries_whatever_its_size(workspace):
    many_customers(workspace, 600)
    choice = prompt_choice(workspace=workspace)
    for chunk_size, chunks in ((100, 6), (300, 2)):
        with CaptureQueriesContext(connection) as queries:
            assert (
                sum(
                    1
                    for _ in prompt_chunks(
                        workspace=workspace, choice=choice, chunk_size=chunk_size
                    )
                )
                == chunks
            )
        # A few shared queries, then at most five per chunk (customers, states, weights, worn,
        # goal history).
        assert len(queries) <= 6 + 5 * (chunks + 1)


def test_it_keeps_memory_flat_as_the_number_of_customers_grows(workspace):
    choice = prompt_choice(workspace=workspace)

    def peak_of_export() -> int:
        chunks = prompt_chunks(workspace=workspace, choice=choice, chunk_size=200)
        tracemalloc.start()
        for _ in encode_chunks(chunks, "jsonl"):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    many_customers(workspace, 400)
    small = peak_of_export()
    many_customers(workspace, 1600, start=400)
    large = peak_of_export()
    assert large < small * 1.5, (small, large)


def test_it_exports_to_a_file_from_the_command_line(workspace, tmp_path, capsys):
    many_customers(workspace, 25)
    out = tmp_path / "prompts.jsonl"
    call_command("export_prompts", "--workspace", "acme", "--format", "jsonl", "--out", str(out))
    lines = out.read_text().splitlines()
    assert len(lines) == 25
    assert json.loads(lines[0])["customer_id"] == "c00000"
    assert "25 prompts" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_it_exports_the_same_file_from_several_processes(workspace, tmp_path):
    if "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("forked workers cannot see an in-memory SQLite database")
    many_customers(workspace, 1500)
    single, parallel = tmp_path / "single.csv", tmp_path / "parallel.csv"
    call_command("export_prompts", "--workspace", "acme", "--format", "csv", "--out", str(single))
    call_command(
        "export_prompts",
        "--workspace",
        "acme",
        "--format",
        "csv",
        "--out",
        str(parallel),
        "--processes",
        "2",
        "--chunk-size",
        "200",
    )
    assert parallel.read_bytes() == single.read_bytes()
    assert len(list(csv.DictReader(io.StringIO(single.read_text())))) == 1500


def test_it_lists_every_prompt_endpoint_in_the_openapi_schema():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in (
        "/api/v1/customers/{external_id}/prompt",
        "/api/v1/customers/{external_id}/prompt/preview",
        "/api/v1/prompts/export",
        "/api/v1/drafts",
    ):
        assert path in paths
    export = paths["/api/v1/prompts/export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/x-ndjson", "text/csv"}


def test_it_neutralises_spreadsheet_formulas_in_the_csv_export(client, read_key, workspace):
    many_customers(workspace, 4)
    hostile = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "@SUM(A1)", "-5"]
    for customer, external_id in zip(
        Customer.objects.for_workspace(workspace).order_by("pk"), hostile, strict=True
    ):
        customer.external_id = external_id
        customer.save(update_fields=["external_id"])
    response = client.get(reverse("api-prompts-export") + "?format=csv", **auth(read_key))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["customer_id"] for row in rows} == {
        '\'=HYPERLINK("http://evil","x")',
        "'+cmd|' /C calc'!A0",
        "'@SUM(A1)",
        "-5",  # a number, not a formula
    }
    assert all(row["template_version"].isdigit() for row in rows)  # numbers stay numbers
    jsonl = client.get(reverse("api-prompts-export") + "?format=jsonl", **auth(read_key))
    lines = b"".join(jsonl.streaming_content).decode().splitlines()
    assert json.loads(lines[0])["customer_id"] in hostile  # JSON Lines keeps values unchanged
