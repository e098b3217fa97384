"""The memory endpoints and the export command, over a recomputed synthetic workspace."""

import csv
import io
import json

import pytest
from django.core.management import call_command

from campaigns.tenancy.services import api_key_create
from memory.models import Customer, CustomerLabelWeight, RecomputeRun
from memory.predict import memory_next_best
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here


@pytest.fixture
def recomputed(workspace):
    synthetic = load_synthetic(workspace, customers=80, events=8_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    return synthetic


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_it_serves_a_customers_memory(client, read_key, recomputed):
    response = client.get("/api/v1/customers/c3/memory", **bearer(read_key))
    assert response.status_code == 200
    memory = response.json()
    assert memory["customer"] == "c3"
    assert set(memory["weights"]) == {"offer", "tone"}
    shares = [row["thompson_share"] for row in memory["weights"]["tone"]]
    assert abs(sum(shares) - 1.0) < 1e-6  # propensities within a set add up to one
    for row in memory["weights"]["offer"]:
        low, high = row["interval"]
        # The weight is the posterior mean rate, inside its own interval.
        assert 0.0 <= low <= row["weight"] <= high <= 1.0
        assert row["weight"] == pytest.approx(row["rate"])
        assert row["evidence"] > 0
    assert (
        memory["habituation"]
        and memory["habituation"][0]["load"] >= memory["habituation"][-1]["load"]
    )
    assert memory["computed_at"].startswith(AS_OF.strftime("%Y-%m-%dT%H:%M"))


def test_it_answers_404_for_an_unknown_customer(client, read_key, recomputed):
    response = client.get("/api/v1/customers/nobody/memory", **bearer(read_key))
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]


def test_it_hides_a_workspaces_memory_from_another_workspaces_key(
    client, other_workspace, recomputed
):
    _, their_key = api_key_create(workspace=other_workspace, scopes=["read", "write"])
    assert client.get("/api/v1/customers/c3/memory", **bearer(their_key)).status_code == 404
    run = RecomputeRun.objects.all_workspaces().get()
    assert client.get(f"/api/v1/recompute/{run.pk}", **bearer(their_key)).status_code == 404
    export = client.get("/api/v1/memory/export?kind=weights&format=jsonl", **bearer(their_key))
    assert b"".join(export.streaming_content) == b""


def test_it_scores_candidate_messages_for_a_customer(client, read_key, recomputed):
    response = client.post(
        "/api/v1/customers/c3/score",
        {"messages": ["m000", "m005", "nope"]},
        content_type="application/json",
        **bearer(read_key),
    )
    assert response.status_code == 200
    scores = {row["message_key"]: row for row in response.json()["scores"]}
    assert 0.0 < scores["m000"]["p_goal"] < 1.0
    assert scores["nope"]["problem"] == "unknown message"
    assert scores["nope"]["p_goal"] is None


def test_it_explains_a_bad_score_request(client, read_key, recomputed):
    response = client.post(
        "/api/v1/customers/c3/score",
        {"messages": []},
        content_type="application/json",
        **bearer(read_key),
    )
    assert response.status_code == 400
    assert "messages" in response.json()


def test_it_starts_a_recompute_and_reports_it(client, write_key, read_key, recomputed):
    response = client.post(
        "/api/v1/recompute",
        {"as_of": AS_OF.isoformat()},
        content_type="application/json",
        **bearer(write_key),
    )
    assert response.status_code in (200, 202)
    run_id = response.json()["id"]
    detail = client.get(f"/api/v1/recompute/{run_id}", **bearer(read_key)).json()
    assert detail["status"] in {"queued", "running", "succeeded"}
    assert client.post("/api/v1/recompute", {}, **bearer(read_key)).status_code == 403


def test_it_streams_the_export_in_both_formats(client, read_key, workspace, recomputed):
    rows = CustomerLabelWeight.objects.for_workspace(workspace).count()
    jsonl = client.get("/api/v1/memory/export?kind=weights&format=jsonl", **bearer(read_key))
    lines = b"".join(jsonl.streaming_content).decode().splitlines()
    assert len(lines) == rows
    assert {"customer", "label_set", "label", "weight", "evidence", "lift"} <= set(
        json.loads(lines[0])
    )
    text = b"".join(
        client.get(
            "/api/v1/memory/export?kind=priming&format=csv", **bearer(read_key)
        ).streaming_content
    ).decode()
    assert text.splitlines()[0].startswith("event_name,lift,odds_ratio")
    bad = client.get("/api/v1/memory/export?kind=secrets", **bearer(read_key))
    assert bad.status_code == 400 and "kind" in json.loads(bad.content)


def test_it_exports_memory_from_the_command_line(workspace, recomputed, tmp_path):
    out = tmp_path / "habituation.csv"
    call_command(
        "export_memory",
        "--workspace",
        "acme",
        "--kind",
        "habituation",
        "--format",
        "csv",
        "--out",
        str(out),
        stderr=io.StringIO(),
    )
    rows = list(csv.DictReader(out.open()))
    assert rows and set(rows[0]) == {
        "customer",
        "message",
        "load",
        "sends",
        "last_sent_at",
        "computed_at",
    }
    assert all(float(row["load"]) > 0 for row in rows)


def test_it_scores_a_csv_from_the_command_line_as_of_a_time(workspace, recomputed, tmp_path):
    source = tmp_path / "pairs.csv"
    source.write_text("customer_id,message_key\nc1,m000\nc2,m004\nghost,m000\n")
    out = tmp_path / "scored.csv"
    call_command(
        "score",
        "--workspace",
        "acme",
        "--as-of",
        AS_OF.isoformat(),
        "--input",
        str(source),
        "--output",
        str(out),
        stderr=io.StringIO(),
    )
    rows = list(csv.DictReader(out.open()))
    assert [row["customer_id"] for row in rows] == ["c1", "c2", "ghost"]
    assert 0 < float(rows[0]["p_goal"]) < 1
    assert any(name.startswith("contribution_") for name in rows[0])
    # Unknown here, so scored from the population alone, and marked so.
    assert [row["cold_start"] for row in rows] == ["false", "false", "true"]
    assert rows[2]["problem"] == "" and 0 < float(rows[2]["p_goal"]) < 1


def test_it_scores_a_customer_without_events_from_their_segment(
    client, read_key, workspace, recomputed
):
    Customer.objects.create(
        workspace=workspace, external_id="newbie", traits={"plan": "gold", "age": 62}
    )
    scored = {}
    for customer in ("newbie", "ghost"):
        response = client.post(
            f"/api/v1/customers/{customer}/score",
            {"messages": ["m000"]},
            content_type="application/json",
            **bearer(read_key),
        )
        assert response.status_code == 200
        (scored[customer],) = response.json()["scores"]
        assert scored[customer]["cold_start"] is True
        assert 0.0 < scored[customer]["p_goal"] < 1.0
    # Known by traits: their segment's rate against the population's; unknown: the population.
    assert scored["ghost"]["feature_segment"] == 0.0
    assert scored["newbie"]["feature_segment"] != 0.0
    ranked = memory_next_best(workspace=workspace, external_id="newbie", limit=3)
    assert ranked.height == 3 and ranked["cold_start"].all()


def test_it_ranks_next_best_messages_from_the_command_line(workspace, recomputed):
    out = io.StringIO()
    call_command("next_best", "--workspace", "acme", "--customer", "c5", "--limit", "3", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["rank", "p_goal", "pull", "labels", "wear", "boost", "message"]
    assert len(lines) == 6 and lines[4].startswith("pull, labels, wear:")
    # Served by default: one explored decision among the allowed messages, logged.
    assert lines[5].startswith("served: ") and "propensity" in lines[5]
    ranked = [line.split() for line in lines[1:4]]
    probabilities = [float(row[1]) for row in ranked]
    assert all(0 < p < 1 for p in probabilities)
    assert probabilities == sorted(probabilities, reverse=True)  # no boosts: p decides
    assert all(float(row[2].removeprefix("x")) > 0 for row in ranked)


def test_it_serves_the_workspaces_memory_at_a_glance(client, workspace, read_key, other_workspace):
    empty = client.get("/api/v1/memory/summary", **bearer(read_key)).json()
    assert empty["run"] is None and empty["model"] is None and empty["label_priors"] == []
    assert empty["glance"]["with_memory"] == 0

    load_synthetic(workspace, customers=80, events=8_000)
    run = recompute_here(workspace=workspace, as_of=AS_OF)
    load_synthetic(other_workspace, customers=30, events=3_000)
    recompute_here(workspace=other_workspace, as_of=AS_OF)

    summary = client.get("/api/v1/memory/summary", **bearer(read_key)).json()
    assert summary["run"]["id"] == run.pk
    assert summary["glance"]["customers"] == summary["glance"]["with_memory"] == 80
    model = summary["model"]
    assert model["training_rows"] == run.stats["model"]["training_rows"]
    effects = [abs(row["effect_per_sd"]) for row in model["features"]]
    assert effects == sorted(effects, reverse=True) and len(effects) >= 5
    levels = model["replay_levels"]
    assert [level["sends"] for level in levels] == [
        level["sends"] for level in run.stats["replay_levels"]
    ]
    assert {row["label_set"] for row in summary["label_priors"]} == {"offer", "tone"}
    assert client.get("/api/v1/memory/summary").status_code in (401, 403)
