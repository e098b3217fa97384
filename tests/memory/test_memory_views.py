"""The memory pages: customers filtered and sorted across pages, the numbers at a glance, the
scoring model's weeks, and what sets each next-best message apart."""

import numpy as np
import pytest

from memory.models import CustomerMessageHabituation, CustomerState
from memory.predict import memory_next_best
from memory.scoring.habituation import WORN_OUT_MIN_LOAD
from memory.scoring.priming import PRIMED_MIN_SCORE
from memory.selectors import memory_at_a_glance
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here


def listed(response) -> list[str]:
    return [row["external_id"] for row in response.context["rows"]]


def test_it_lists_only_the_customers_primed_now(member_client, workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    scores = dict(
        CustomerState.objects.for_workspace(workspace).values_list(
            "customer__external_id", "primed_score"
        )
    )
    primed = sorted(name for name, score in scores.items() if score >= PRIMED_MIN_SCORE)
    assert 0 < len(primed) < len(scores)  # the data has both kinds

    everyone = member_client.get("/customers/")
    only = member_client.get("/customers/?primed=1")
    assert len(listed(everyone)) == min(len(scores), 50)
    assert listed(only) == primed[:50]
    assert listed(only) != listed(everyone)  # the filter left someone out of the first page
    assert b'name="primed" value="1" checked' in only.content


def test_it_keeps_the_filter_on_the_next_page(member_client, workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    CustomerState.objects.for_workspace(workspace).update(primed_score=1.0)

    first = member_client.get("/customers/?primed=1")
    assert len(listed(first)) == 50
    after = first.context["next_after"]
    assert f"primed=1&amp;after={after}" in first.content.decode()
    CustomerState.objects.for_workspace(workspace).filter(customer__external_id__gt=after).update(
        primed_score=0.0
    )
    assert listed(member_client.get(f"/customers/?primed=1&after={after}")) == []
    assert len(listed(member_client.get(f"/customers/?after={after}"))) == 10


def test_it_shows_the_workspaces_own_numbers_at_a_glance(member_client, workspace, other_workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    load_synthetic(other_workspace, customers=90, events=9_000)
    run = recompute_here(workspace=workspace, as_of=AS_OF)
    recompute_here(workspace=other_workspace, as_of=AS_OF)
    states = CustomerState.objects.for_workspace(workspace)
    worn = CustomerMessageHabituation.objects.for_workspace(workspace).filter(
        load__gte=WORN_OUT_MIN_LOAD
    )

    glance = member_client.get("/memory/").context["glance"]
    assert glance["customers"] == glance["with_memory"] == 60
    assert glance["primed_now"] == states.filter(primed_score__gte=PRIMED_MIN_SCORE).count()
    assert glance["worn_out"] == len(set(worn.values_list("customer_id", flat=True)))
    assert 0 < glance["worn_out"] < 60
    assert glance["events"] == run.events
    assert glance["goal_rate_after_send"] == run.stats["goal_rate_after_send"]


def test_it_shows_a_workspace_without_memory(member_client, workspace):
    response = member_client.get("/memory/")
    assert response.status_code == 200
    assert response.context["glance"]["with_memory"] == 0
    assert b"No recompute yet" in response.content
    assert b"No scoring model yet" in response.content


def test_it_counts_the_derived_rows_once_a_run(workspace, django_assert_num_queries):
    load_synthetic(workspace, customers=30, events=3_000)
    first = recompute_here(workspace=workspace, as_of=AS_OF)
    counted = memory_at_a_glance(workspace=workspace, run=first)
    with django_assert_num_queries(1):  # the customers only: the run's counts are cached
        assert memory_at_a_glance(workspace=workspace, run=first) == counted

    second = recompute_here(workspace=workspace, as_of=AS_OF, incremental=True)
    CustomerState.objects.for_workspace(workspace).update(primed_score=5.0)
    assert memory_at_a_glance(workspace=workspace, run=first) == counted  # as it was then
    assert memory_at_a_glance(workspace=workspace, run=second)["primed_now"] == 30


@pytest.mark.parametrize(
    "sort, column", [("primed", "primed_score"), ("baseline", "baseline_rate")]
)
def test_it_sorts_customers_highest_first_across_pages(member_client, workspace, sort, column):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    states = CustomerState.objects.for_workspace(workspace)
    # Ties on the key, and a customer without memory, who comes last.
    states.filter(customer__external_id__in=["c10", "c11", "c12"]).update(**{column: 0.5})
    states.filter(customer__external_id="c13").delete()
    values = dict(states.values_list("customer__external_id", column))
    expected = [*sorted(values, key=lambda name: (-values[name], name)), "c13"]

    seen, after = [], ""
    while True:
        response = member_client.get("/customers/", {"sort": sort, "after": after})
        seen += listed(response)
        after = response.context["next_after"]
        if not after:
            break
        assert f"sort={sort}&amp;after=" in response.content.decode()
    assert seen == expected


def test_it_refuses_an_unknown_sort_or_a_malformed_key(member_client, workspace):
    unknown = member_client.get("/customers/?sort=income")
    assert unknown.status_code == 400 and b"sort must be one of" in unknown.content
    for after in ("high|c1", "nan|c1", "inf|c1"):
        malformed = member_client.get("/customers/", {"sort": "primed", "after": after})
        assert malformed.status_code == 400 and b"after must be" in malformed.content


def test_it_says_what_sets_each_next_best_message_apart(member_client, workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace)  # the latest memory, which the engine scores with
    ranked = memory_next_best(workspace=workspace, external_id="c7", limit=5)
    parts = [name for name in ranked.columns if name.startswith("contribution_")]
    # The contributions add up to the calibrated logit of p.
    logit = np.log(ranked["p_goal"] / (1 - ranked["p_goal"]))
    assert ranked.select(parts).sum_horizontal().to_numpy() == pytest.approx(logit.to_numpy())

    page = member_client.get("/customers/c7/").context["ranking"]
    assert [row.key for row in page] == ranked["key"].to_list()
    for row, frame_row in zip(page, ranked.iter_rows(named=True), strict=True):
        pull = frame_row["contribution_message"] + frame_row["contribution_message_frequency"]
        assert row.pull == pytest.approx(np.exp(pull))
        assert row.wear_out == pytest.approx(np.exp(frame_row["contribution_habituation"]))
    assert len({round(row.pull, 6) for row in page}) > 1  # it differs between messages


def test_it_shows_the_weeks_the_kept_model_learned_from_after_an_incremental_run(
    member_client, workspace
):
    load_synthetic(workspace, customers=60, events=6_000)
    full = recompute_here(workspace=workspace, as_of=AS_OF)
    incremental = recompute_here(workspace=workspace, as_of=AS_OF, incremental=True)
    # It replayed nothing: it kept the model, and with it the weeks that model learned from.
    assert incremental.stats["replay_levels"] == full.stats["replay_levels"]

    context = member_client.get("/memory/").context
    assert context["latest"].pk == incremental.pk
    levels = context["model"]["replay_levels"]
    assert [row["sends"] for row in levels] == [
        level["sends"] for level in full.stats["replay_levels"]
    ]
    assert levels and all(row["to"] > row["from"] for row in levels)


def test_it_lists_the_customers_worn_out_on_a_message(member_client, workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    recompute_here(workspace=workspace, as_of=AS_OF)
    rows = CustomerMessageHabituation.objects.for_workspace(workspace)
    rows.update(load=WORN_OUT_MIN_LOAD / 2)
    rows.filter(customer__external_id__in=["c3", "c30", "c45"]).update(load=WORN_OUT_MIN_LOAD)
    states = CustomerState.objects.for_workspace(workspace)
    states.update(primed_score=0.0)
    states.filter(customer__external_id__in=["c30", "c31"]).update(primed_score=1.0)

    assert listed(member_client.get("/customers/?worn=1")) == ["c3", "c30", "c45"]
    assert listed(member_client.get("/customers/?worn=1&primed=1")) == ["c30"]
    nobody = member_client.get("/customers/?worn=1&q=c31")
    assert "No customers match “c31” and have a worn-out message." in nobody.content.decode()
