"""The insight pages: what a member sees, only their workspace's, and never a scan of events."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import Membership
from memory.insights import NO_CHANNEL, TIMELINE_LIMIT, content_gaps
from memory.models import RecomputeRun
from memory.services import events_ingest
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = pytest.mark.django_db

PAGES = {
    "/insights/": ["days-figure", "issues-figure"],
    "/insights/associations/": ["heatmap-figure", "weights-figure", "gaps-figure"],
    "/insights/habituation/": ["curve-figure", "map-figure"],
    "/insights/priming/": ["lift-figure", "leads-figure"],
}
# The events table itself (not the tallies, imports or names tables beside it).
EVENTS_TABLE = re.compile(r'"memory_event"')


@pytest.fixture
def learned(workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    events_ingest(workspace=workspace, payloads=[{"type": "track", "event": "Nobody"}])
    return workspace


@pytest.fixture
def viewer_client(client, make_user, workspace):
    client.force_login(make_user("victor", workspace=workspace, role=Membership.Role.VIEWER))
    return client


def figure_ids(response) -> list[str]:
    return re.findall(r'<script id="([\w-]+)" type="application/json">', response.content.decode())


def test_a_viewer_sees_every_insight_page_with_its_charts_and_tables(viewer_client, learned):
    for path, figures in PAGES.items():
        response = viewer_client.get(path)
        assert response.status_code == 200, path
        assert figure_ids(response) == figures, path
        html = response.content.decode()
        # Each chart sits beside its table.
        assert html.count('class="chart-with-table"') == len(figures), path
        assert 'class="sub-nav"' in html and 'aria-current="page"' in html
        assert 'class="flash"' not in html, path  # no context key shadows the flash messages


def test_the_insights_entry_is_one_link_in_the_main_navigation(viewer_client, learned):
    html = viewer_client.get("/memory/").content.decode()
    nav = html.split('class="main-nav"')[1].split("</nav>")[0]
    assert nav.count('href="/insights/') == 1


def test_the_overview_shows_per_day_events_runs_and_data_health(viewer_client, learned):
    response = viewer_client.get("/insights/")

    days = response.context["days"]
    assert days and sum(row.sends for row in days) > 0 and sum(row.goals for row in days) > 0
    health = response.context["health"]
    assert health["rejected"] == 1
    assert health["customers_without_traits"] == 0
    html = response.content.decode()
    assert "userId: userId or anonymousId is required" in html
    assert 'id="first-steps"' not in html
    assert response.context["run"].status == RecomputeRun.Status.SUCCEEDED


def test_it_follows_a_running_recompute_with_a_progress_bar(viewer_client, learned):
    run = RecomputeRun.objects.create(
        workspace=learned, status=RecomputeRun.Status.RUNNING, shards_total=4, shards_done=1
    )

    html = viewer_client.get("/insights/").content.decode()

    assert f'data-url="/memory/runs/{run.pk}/status/"' in html
    assert '<progress max="4" value="1">' in html
    assert "js/run-status.js" in html


def test_an_empty_workspace_is_told_what_to_do_first(viewer_client, workspace):
    response = viewer_client.get("/insights/")

    html = response.content.decode()
    assert 'id="first-steps"' in html
    assert "http://testserver/api/v1/events" in html and "curl" in html
    assert "http://testserver/v1/batch" in html and "Segment" in html
    for path in PAGES:
        assert viewer_client.get(path).status_code == 200
    assert figure_ids(viewer_client.get("/insights/associations/")) == []


def test_a_member_sees_only_their_own_workspaces_insights(
    client, make_user, learned, other_workspace
):
    client.force_login(make_user("gina", workspace=other_workspace))

    overview = client.get("/insights/")
    associations = client.get("/insights/associations/?trait=plan")

    assert overview.context["days"] == [] and 'id="first-steps"' in overview.content.decode()
    assert overview.context["issues"] == []
    assert associations.context["heatmap"] is None and associations.context["weights"] == []
    assert client.get("/insights/priming/").context["indicators"] == []
    assert client.get("/customers/c1/").status_code == 404


def test_the_associations_page_segments_by_the_chosen_trait(viewer_client, learned):
    response = viewer_client.get("/insights/associations/?trait=plan")

    heatmap = response.context["heatmap"]
    assert heatmap["trait"] == "plan"
    assert sorted(heatmap["values"]) == ["basic", "gold"]
    assert sum(heatmap["customers"]) == 60
    assert any("offer:" in label for label in heatmap["labels"])
    # An unknown trait falls back to the first one stored; nothing breaks.
    assert viewer_client.get("/insights/associations/?trait=<x>").context["trait"] == "plan"


def test_no_insight_page_reads_the_events_table(viewer_client, learned):
    viewer_client.get("/insights/habituation/")  # the similarity map is computed once, cached
    for path in PAGES:
        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get(path).status_code == 200
        touching = [q["sql"] for q in queries.captured_queries if EVENTS_TABLE.search(q["sql"])]
        assert touching == [], path
        assert len(queries.captured_queries) <= 16, path


def test_the_customer_timeline_is_one_bounded_read_of_their_events(viewer_client, learned):
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get("/customers/c12/")

    timeline = response.context["timeline"]
    assert timeline and {row["kind"] for row in timeline} >= {"sends", "goals"}
    assert [row["occurred_at"] for row in timeline] == sorted(r["occurred_at"] for r in timeline)
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if EVENTS_TABLE.search(q["sql"]) and '"memory_event"."occurred_at" >=' in q["sql"]
    ]
    assert len(reads) == 1
    assert f"LIMIT {TIMELINE_LIMIT}" in reads[0] and '"memory_event"."customer_id" =' in reads[0]
    assert 'id="timeline-figure"' in response.content.decode()


def test_the_content_gap_map_counts_active_messages_per_label_and_channel(workspace):
    messages_upsert(
        workspace=workspace,
        specs=[
            MessageSpec(key="a", body="A", labels={"offer": ["discount"], "channel": ["email"]}),
            MessageSpec(
                key="b", body="B", labels={"offer": ["discount"], "channel": ["email", "sms"]}
            ),
            MessageSpec(key="c", body="C", labels={"offer": ["bogo"]}),
        ],
    )

    gaps = content_gaps(workspace=workspace)

    assert gaps["channels"] == ["email", "sms", NO_CHANNEL]
    cells = dict(zip(gaps["labels"], gaps["counts"], strict=True))
    assert cells == {"offer: bogo": [0, 0, 1], "offer: discount": [2, 1, 0]}
