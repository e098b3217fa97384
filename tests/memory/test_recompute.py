"""The recompute service on the real database: sharded, atomic, repeatable, leak-free."""

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from django.db import connection
from django.utils import timezone
from scipy.stats import spearmanr

from campaigns.models import Workspace
from memory.models import (
    Customer,
    CustomerLabelWeight,
    CustomerState,
    Event,
    RecomputeRun,
    RecomputeShard,
)
from tests.conftest import require
from tests.memory.engine_fixtures import AS_OF, ORIGIN, derived_rows, load_synthetic, recompute_here


@pytest.fixture
def synthetic(workspace):
    return load_synthetic(workspace)


def test_it_fills_every_derived_table(workspace, synthetic):
    run = recompute_here(workspace=workspace, as_of=AS_OF)
    assert run.status == RecomputeRun.Status.SUCCEEDED
    customers = Customer.objects.for_workspace(workspace).count()
    assert CustomerState.objects.for_workspace(workspace).count() == customers
    assert (
        run.stats["rows"]["weights"] == CustomerLabelWeight.objects.for_workspace(workspace).count()
    )
    assert run.stats["rows"]["weights"] > customers  # several labels per customer
    assert run.stats["rows"]["habituation"] > 0
    assert run.stats["rows"]["priming"] >= 1
    assert (
        run.events == Event.objects.for_workspace(workspace).filter(occurred_at__lt=AS_OF).count()
    )
    assert RecomputeShard.objects.filter(run=run).count() == 0  # shard rows are swapped away


def test_it_recovers_planted_preferences(workspace, synthetic):
    recompute_here(workspace=workspace, as_of=AS_OF)
    learned = pl.DataFrame(
        list(
            CustomerLabelWeight.objects.for_workspace(workspace).values_list(
                "customer__external_id", "label__label_set__slug", "label__slug", "lift"
            )
        ),
        schema=["external_id", "label_set", "label", "lift"],
        orient="row",
    )
    truth = synthetic.preferences.with_columns(
        ("c" + pl.col("customer").cast(pl.Utf8)).alias("external_id")
    )
    joined = learned.join(truth, on=["external_id", "label_set", "label"])
    rho = spearmanr(joined["lift"], joined["preference"]).statistic
    # Measured 0.251 on this small workspace (240 customers, ~8 sends each before as_of);
    # the pure engine reaches 0.341 on 1,000 customers (tests/memory/test_scoring_pipeline.py).
    assert rho > 0.2, rho


def test_it_gives_identical_rows_on_two_recomputes(workspace, synthetic):
    recompute_here(workspace=workspace, as_of=AS_OF)
    first = derived_rows(workspace)
    recompute_here(workspace=workspace, as_of=AS_OF)
    assert derived_rows(workspace) == first


def test_it_never_uses_events_at_or_after_as_of(workspace, synthetic):
    recompute_here(workspace=workspace, as_of=AS_OF)
    before = derived_rows(workspace)
    customers = list(Customer.objects.for_workspace(workspace).order_by("pk")[:50])
    later = [
        Event(
            workspace=workspace,
            customer=c,
            name=workspace.goal_event,
            dedup_key=f"late-{c.pk}-{i}",
            occurred_at=AS_OF + timedelta(hours=i),
        )
        for c in customers
        for i in (0, 1, 30)
    ]
    Event.objects.bulk_create(later)
    recompute_here(workspace=workspace, as_of=AS_OF)
    assert derived_rows(workspace) == before


def test_it_gives_the_same_rows_in_one_shard_or_many(workspace, synthetic, settings):
    recompute_here(workspace=workspace, as_of=AS_OF)
    one_shard = derived_rows(workspace)
    settings.PRIMER_RECOMPUTE_CUSTOMERS_PER_SHARD = 37
    run = recompute_here(workspace=workspace, as_of=AS_OF)
    assert run.shards_total == 7
    assert derived_rows(workspace) == one_shard


def _event_add(workspace, name: str, dedup_key: str, before: timedelta, external_id="c7"):
    """Give one customer a new event shortly before AS_OF; return the customer."""
    customer = Customer.objects.for_workspace(workspace).get(external_id=external_id)
    Event.objects.create(
        workspace=workspace,
        customer=customer,
        name=name,
        dedup_key=dedup_key,
        occurred_at=AS_OF - before,
    )
    return customer


def test_it_recomputes_only_changed_customers_incrementally(workspace, synthetic):
    full = recompute_here(workspace=workspace, as_of=AS_OF)
    changed = _event_add(workspace, "Product Viewed", "new-1", timedelta(hours=1))
    untouched_before = CustomerState.objects.for_workspace(workspace).exclude(customer=changed)
    untouched = sorted(untouched_before.values_list("customer_id", "last_recompute_at"))
    run = recompute_here(workspace=workspace, as_of=AS_OF, incremental=True)
    assert run.mode == RecomputeRun.Mode.INCREMENTAL
    assert run.customers == 1
    assert run.events < full.events / 50
    state = CustomerState.objects.for_workspace(workspace)
    assert (
        sorted(state.exclude(customer=changed).values_list("customer_id", "last_recompute_at"))
        == untouched
    )
    assert state.get(customer=changed).last_recompute_at == AS_OF


def test_it_recomputes_an_empty_workspace(workspace):
    run = recompute_here(workspace=workspace)
    assert run.status == RecomputeRun.Status.SUCCEEDED
    assert run.customers == 0
    assert derived_rows(workspace) == {"weights": [], "habituation": [], "state": [], "priming": []}


def test_it_remembers_a_customer_who_was_never_sent_anything(workspace, synthetic):
    loner = Customer.objects.create(workspace=workspace, external_id="walk-in")
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            customer=loner,
            name=workspace.goal_event,
            occurred_at=ORIGIN + timedelta(hours=h),
            dedup_key=f"walk-in-{h}",
        )
        for h in (10, 200, 900)
    )
    recompute_here(workspace=workspace, as_of=AS_OF)
    state = CustomerState.objects.for_workspace(workspace).get(customer=loner)
    assert state.baseline_rate > 0
    assert not CustomerLabelWeight.objects.for_workspace(workspace).filter(customer=loner).exists()


def test_it_keeps_other_workspaces_memory_untouched(workspace, other_workspace, synthetic):
    load_synthetic(other_workspace, customers=60, events=5_000, seed=9)
    recompute_here(workspace=other_workspace, as_of=AS_OF)
    theirs = derived_rows(other_workspace)
    recompute_here(workspace=workspace, as_of=AS_OF)
    recompute_here(workspace=workspace)
    assert derived_rows(other_workspace) == theirs
    assert Workspace.objects.count() == 2


def test_it_keeps_the_old_memory_when_a_recompute_fails(workspace, synthetic, monkeypatch):
    recompute_here(workspace=workspace, as_of=AS_OF)
    before = derived_rows(workspace)

    def explode(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("memory.db.writeback.swap", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        recompute_here(workspace=workspace)
    run = RecomputeRun.objects.for_workspace(workspace).order_by("-created_at").first()
    assert run.status == RecomputeRun.Status.FAILED
    assert "disk on fire" in run.error
    assert derived_rows(workspace) == before
    assert np.isfinite([row[4] for row in before["weights"]]).all()


def test_it_sends_the_changed_prompts_to_webhooks_after_a_recompute(
    workspace, synthetic, django_capture_on_commit_callbacks
):
    import json

    from campaigns.webhooks.services import webhook_create
    from config.celery import app
    from tests.campaigns.prompt_support import Recorder

    receiver = Recorder(lambda request: (200, b"ok", "text/plain"))
    webhook_create(workspace=workspace, url=receiver.url + "/hook", description="CRM")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            recompute_here(workspace=workspace, as_of=AS_OF)
    finally:
        app.conf.task_always_eager = eager
        receiver.close()
    delivered = [json.loads(request["raw"]) for request in receiver.requests]
    customers = Customer.objects.for_workspace(workspace).count()
    assert sum(len(body["prompts"]) for body in delivered) == customers
    assert all(r["headers"]["x-primer-signature"].startswith("t=") for r in receiver.requests)


def test_it_recomputes_everyone_when_an_incremental_run_has_no_earlier_run(workspace, synthetic):
    run = recompute_here(workspace=workspace, as_of=AS_OF, incremental=True)
    assert run.mode == RecomputeRun.Mode.FULL
    assert run.customers == Customer.objects.for_workspace(workspace).count()


def test_it_turns_a_large_incremental_run_into_a_full_one(workspace, synthetic, monkeypatch):
    recompute_here(workspace=workspace, as_of=AS_OF)
    Event.objects.for_workspace(workspace).update(received_at=timezone.now() + timedelta(days=1))
    monkeypatch.setattr("memory.recompute.plan.INCREMENTAL_MAX_CUSTOMERS", 10)
    run = recompute_here(workspace=workspace, as_of=AS_OF, incremental=True)
    assert run.mode == RecomputeRun.Mode.FULL


def _rows_by_table(table: str, workspace) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text, count(*) FROM {table}"
            " WHERE workspace_id = %s GROUP BY 1",
            [workspace.pk],
        )
        return dict(cursor.fetchall())


def test_it_swaps_in_a_whole_workspace_partition_on_postgresql(workspace, other_workspace):
    require(connection.vendor == "postgresql", "partitions exist on PostgreSQL only")
    load_synthetic(workspace)
    load_synthetic(other_workspace, customers=60, events=5_000, seed=9)
    recompute_here(workspace=other_workspace, as_of=AS_OF)
    theirs = derived_rows(other_workspace)
    # A row written through the ORM lands in the default partition until the next full run.
    stray = CustomerState.objects.create(
        workspace=workspace,
        customer=Customer.objects.for_workspace(workspace).first(),
        primed_score=42.0,
        signals=[],
    )
    assert _rows_by_table("memory_customerstate", workspace) == {"memory_customerstate_default": 1}

    run = recompute_here(workspace=workspace, as_of=AS_OF)

    for name, table in (
        ("weights", "memory_customerlabelweight"),
        ("habituation", "memory_customermessagehabituation"),
        ("state", "memory_customerstate"),
    ):
        assert _rows_by_table(table, workspace) == {
            f"{table}_w{workspace.pk}": run.stats["rows"][name]
        }
    assert not CustomerState.objects.for_workspace(workspace).filter(pk=stray.pk).exists()
    assert derived_rows(other_workspace) == theirs
    again = recompute_here(workspace=workspace, as_of=AS_OF)
    assert _rows_by_table("memory_customerstate", workspace) == {
        f"memory_customerstate_w{workspace.pk}": again.stats["rows"]["state"]
    }


def _model_of(run):
    from memory.scoring.sharded import Population

    run.refresh_from_db()
    return Population.from_bytes(bytes(run.population)).model


def test_an_incremental_run_keeps_the_last_runs_scoring_model(workspace, synthetic):
    full = recompute_here(workspace=workspace, as_of=AS_OF)
    _event_add(workspace, "Order Completed", "new-goal", timedelta(hours=1))
    incremental = recompute_here(workspace=workspace, as_of=AS_OF, incremental=True)
    kept, fitted = _model_of(incremental), _model_of(full)
    assert kept.features == fitted.features
    assert np.array_equal(kept.coefficients, fitted.coefficients)
    assert kept.calibration == fitted.calibration

    # Another attribution window makes the old coefficients meaningless: refit them.
    workspace.attribution_window_h = workspace.attribution_window_h * 2
    workspace.save()
    _event_add(workspace, "Order Completed", "new-goal-2", timedelta(minutes=30))
    refitted = recompute_here(workspace=workspace, as_of=AS_OF, incremental=True)
    assert refitted.mode == RecomputeRun.Mode.INCREMENTAL
    assert not np.array_equal(_model_of(refitted).coefficients, fitted.coefficients)
