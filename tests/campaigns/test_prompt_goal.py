"""The prompt states the goal numbers the scoring model uses: counts, recency and rates."""

import numpy as np
import polars as pl
import pytest

from campaigns.prompts.context import CUSTOMER_COLUMNS, CustomerRow, MemoryReader
from campaigns.prompts.selectors import prompt_choice, prompt_for_customer
from campaigns.prompts.wording import per_week, span
from memory.db.reads import CustomerFilter, hours_since_epoch
from memory.models import Customer, RecomputeRun
from memory.recompute.inputs import engine_inputs
from memory.scoring import sharded
from tests.campaigns.prompt_support import MEMORY_AT, customer, event, remember
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = pytest.mark.django_db


def render(workspace, external_id):
    chosen = prompt_choice(workspace=workspace)
    return prompt_for_customer(workspace=workspace, external_id=external_id, choice=chosen)


def test_it_says_spans_and_weekly_rates_as_documented():
    assert [span(h) for h in (0.2, 30.0, 47.9, 48.0, 500.0)] == [
        "1 h",
        "30 h",
        "48 h",
        "2 days",
        "21 days",
    ]
    assert [per_week(r) for r in (None, 0.0021, 0.02, 1 / 168)] == [None, 0.35, 3.4, 1.0]


def test_it_counts_the_goals_before_the_memory_time(workspace):
    person = customer(workspace, "buyer")
    for hours in (-5, 30, 100, 500):  # the first after the memory time: not counted
        event(person, "Order Completed", hours)
    event(person, "Page Viewed", 600)
    recompute_here(workspace=workspace, as_of=MEMORY_AT)
    prompt, context = render(workspace, "buyer")
    goal = context["goal"]
    assert (goal["count"], goal["observed_h"], goal["hours_since"]) == (3, 600.0, 30.0)
    assert goal["last_ago"] == "30 h ago"
    assert goal["summary"].startswith(
        '"Order Completed" 3 times in the last 25 days, the last 30 h ago (about '
    )
    assert f"Their habit so far: {goal['summary']}." in prompt.text


def test_it_states_no_rates_without_the_run_that_fitted_them(workspace):
    person = customer(workspace, "buyer")
    event(person, "Order Completed", 30)
    recompute_here(workspace=workspace, as_of=MEMORY_AT)
    RecomputeRun.objects.for_workspace(workspace).update(population=None)
    _, context = render(workspace, "buyer")
    assert context["goal"]["population_rate_week"] is None
    assert (
        context["goal"]["summary"] == '"Order Completed" 1 time in the last 30 h, the last 30 h ago'
    )


def test_it_says_nothing_of_the_goal_without_events(workspace):
    remember(customer(workspace, "quiet"))
    prompt, context = render(workspace, "quiet")
    assert context["goal"]["count"] == 0
    assert context["goal"]["summary"] == ""
    assert "Their habit so far" not in prompt.text


def test_it_states_the_rates_the_engine_scored_with(workspace):
    load_synthetic(workspace)
    run = recompute_here(workspace=workspace, as_of=AS_OF)
    assert run.status == RecomputeRun.Status.SUCCEEDED
    population = sharded.Population.from_bytes(bytes(run.population))
    assert population.baseline.traits is not None  # the synthetic customers have traits
    ids = tuple(
        Customer.objects.for_workspace(workspace).order_by("pk").values_list("pk", flat=True)[:40]
    )
    inputs = engine_inputs(
        workspace=workspace,
        as_of=run.as_of,
        customers=CustomerFilter(customer_ids=ids),
        trait_keys=run.stats["trait_keys"],
    )
    n = inputs.customer_ids.len()
    scored = sharded.score_with_population(
        events=inputs.events,
        population=population,
        horizon=hours_since_epoch(run.as_of),
        candidates=pl.DataFrame({"customer": np.arange(n), "message": np.zeros(n, dtype=int)}),
        traits=inputs.engine_traits,
    )
    window = population.config.attribution_window_h
    rows = [
        CustomerRow(*row)
        for row in Customer.objects.for_workspace(workspace)
        .filter(pk__in=inputs.customer_ids.to_list())
        .order_by("pk")
        .values_list(*CUSTOMER_COLUMNS)
    ]
    states = MemoryReader(workspace).read(rows).states
    frequency = np.exp(scored["feature_frequency"].to_numpy()) / window
    segment = np.exp(scored["feature_segment"].to_numpy()) * population.baseline.pooled_rate_h
    assert [states[pk][8] for pk in inputs.customer_ids] == pytest.approx(frequency, rel=1e-9)
    assert [states[pk][9] for pk in inputs.customer_ids] == pytest.approx(segment, rel=1e-9)
    assert np.ptp(segment) > 0  # the traits really move the segment rate
    _, context = render(workspace, rows[0].external_id)
    assert context["goal"]["rate_week"] == per_week(frequency[0])
    assert "customers of their profile" in context["goal"]["summary"]
