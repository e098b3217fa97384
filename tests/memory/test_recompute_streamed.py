"""An in-process full run writes each bucket while computing the next: same rows, same safety."""

import pytest
from django.db import connection

from memory.models import (
    CustomerLabelWeight,
    CustomerMessageHabituation,
    CustomerState,
    PrimingIndicator,
    RecomputeRun,
)
from memory.recompute.chord import finish_on_worker, population_on_worker, shard_on_worker
from memory.recompute.plan import recompute_start
from tests.conftest import require
from tests.memory.engine_fixtures import AS_OF, derived_rows, load_synthetic, recompute_here

pytestmark = pytest.mark.django_db

KEYS = {
    CustomerLabelWeight: ("customer_id", "label_id"),
    CustomerMessageHabituation: ("customer_id", "message_id"),
    CustomerState: ("customer_id",),
    PrimingIndicator: ("event_name",),
}


def every_column(workspace) -> dict[str, list[tuple]]:
    """Return every derived row with every column but the id, in key order."""
    rows = {}
    for model, key in KEYS.items():
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows[model.__name__] = list(
            model.objects.for_workspace(workspace).order_by(*key).values_list(*fields)
        )
    return rows


def stored_shards_recompute(workspace):
    """Recompute the way workers do: every shard stored on its row, then one swap."""
    plan = recompute_start(workspace=workspace, as_of=AS_OF)
    population_on_worker(run_id=plan.run_id)
    for index in range(plan.shards):
        shard_on_worker(run_id=plan.run_id, index=index)
    return finish_on_worker(run_id=plan.run_id)


@pytest.fixture
def synthetic(workspace, settings):
    settings.PRIMER_RECOMPUTE_CUSTOMERS_PER_SHARD = 37  # 7 buckets
    return load_synthetic(workspace)


def test_it_writes_the_same_rows_as_storing_every_shard_first(workspace, synthetic):
    stored = stored_shards_recompute(workspace)
    assert stored.shards_total == 7
    before = every_column(workspace)
    assert len(before["CustomerLabelWeight"]) > 240

    streamed = recompute_here(workspace=workspace, as_of=AS_OF)

    assert streamed.status == RecomputeRun.Status.SUCCEEDED
    assert streamed.shards_done == 7
    assert streamed.stats["rows"] == stored.stats["rows"]
    assert every_column(workspace) == before


def test_it_fits_the_model_while_the_write_is_behind_with_the_same_result(
    workspace, synthetic, monkeypatch
):
    require(connection.vendor == "postgresql", "the partitions are built on PostgreSQL only")
    from memory.db import writeback

    stored = stored_shards_recompute(workspace)
    before = every_column(workspace)
    monkeypatch.setattr(writeback.PartitionBuild, "behind", lambda build: True)

    streamed = recompute_here(workspace=workspace, as_of=AS_OF)

    assert streamed.timings["fit_steps_after_shards"] == 0  # every step was taken in the gaps
    assert bytes(streamed.population) == bytes(stored.population)
    assert streamed.stats["model"] == stored.stats["model"]
    assert every_column(workspace) == before


def test_it_keeps_the_old_memory_when_the_build_fails_mid_way(workspace, synthetic, monkeypatch):
    require(connection.vendor == "postgresql", "the streamed build runs on PostgreSQL only")
    recompute_here(workspace=workspace, as_of=AS_OF)
    before = derived_rows(workspace)
    from memory.db import writeback

    real_copy, parts = writeback.PartitionBuild._copy, []

    def copy_then_fail(self, cursor, part):
        parts.append(part)
        if len(parts) == 3:
            raise RuntimeError("disk full")
        real_copy(self, cursor, part)

    monkeypatch.setattr(writeback.PartitionBuild, "_copy", copy_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        recompute_here(workspace=workspace, as_of=AS_OF)

    run = RecomputeRun.objects.for_workspace(workspace).order_by("-created_at").first()
    assert run.status == RecomputeRun.Status.FAILED
    assert derived_rows(workspace) == before
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE %s", [f"%_w{workspace.pk}_new"]
        )
        assert cursor.fetchone() == (0,)  # the half-built tables went with the rollback


@pytest.mark.django_db(transaction=True)
def test_a_reader_sees_the_old_memory_while_the_new_one_is_written(
    workspace, synthetic, monkeypatch
):
    require(connection.vendor == "postgresql", "the streamed build runs on PostgreSQL only")
    from django.db import connections

    from memory.db import writeback

    recompute_here(workspace=workspace, as_of=AS_OF)
    old = derived_rows(workspace)
    CustomerState.objects.for_workspace(workspace).update(primed_score=-1.0)  # mark the old rows
    real_copy, seen = writeback.PartitionBuild._copy, []

    def copy_and_look(self, cursor, part):
        real_copy(self, cursor, part)
        reader = connections.create_connection("default")  # another session, as a page's
        try:
            with reader.cursor() as look:
                look.execute(
                    "SELECT count(*), min(primed_score), max(primed_score)"
                    " FROM memory_customerstate WHERE workspace_id = %s",
                    [workspace.pk],
                )
                seen.append(look.fetchone())
        finally:
            reader.close()

    monkeypatch.setattr(writeback.PartitionBuild, "_copy", copy_and_look)
    recompute_here(workspace=workspace, as_of=AS_OF)

    # Per shard a part, then per shard its next best lists: only the old rows, all of them.
    assert seen == [(len(old["state"]), -1.0, -1.0)] * 14
    assert derived_rows(workspace) == old


@pytest.mark.django_db(transaction=True)
def test_it_fits_the_sample_while_another_connection_reads_everyone_else(
    workspace, synthetic, monkeypatch
):
    require(connection.vendor == "postgresql", "the second reader runs on PostgreSQL only")
    from django.db import transaction

    monkeypatch.setattr("memory.recompute.inputs.POPULATION_CUSTOMERS", 100)  # 3 buckets
    monkeypatch.setattr("memory.recompute.inputs.SAMPLE_BY_IDS_MAX", 10)
    with transaction.atomic():  # where a second connection could not see the events
        one_read = recompute_here(workspace=workspace, as_of=AS_OF)
    rows = every_column(workspace)

    two_reads = recompute_here(workspace=workspace, as_of=AS_OF)

    assert "read_wait_s" in two_reads.timings and "read_wait_s" not in one_read.timings
    assert two_reads.events == one_read.events
    assert bytes(two_reads.population) == bytes(one_read.population)
    assert every_column(workspace) == rows


@pytest.mark.django_db(transaction=True)
def test_an_incremental_run_reads_its_customers_while_the_population_fits(
    workspace, synthetic, monkeypatch
):
    require(connection.vendor == "postgresql", "the second reader runs on PostgreSQL only")
    import threading

    from django.db import transaction

    from memory.models import Customer
    from memory.recompute import overlap

    recompute_here(workspace=workspace, as_of=AS_OF)
    everyone = Customer.objects.for_workspace(workspace).order_by("pk")
    changed = list(everyone.values_list("pk", flat=True))[::8]
    with transaction.atomic():  # where a second connection could not see the events
        one_read = recompute_here(workspace=workspace, as_of=AS_OF, customers=changed)
    rows = every_column(workspace)
    real_inputs, readers = overlap.engine_inputs, []

    def spied_inputs(**kwargs):
        readers.append(threading.current_thread() is threading.main_thread())
        return real_inputs(**kwargs)

    monkeypatch.setattr(overlap, "engine_inputs", spied_inputs)
    two_reads = recompute_here(workspace=workspace, as_of=AS_OF, customers=changed)

    assert readers.count(False) == 1  # the changed customers, on the other connection
    assert two_reads.mode == RecomputeRun.Mode.INCREMENTAL
    assert two_reads.events == one_read.events
    assert bytes(two_reads.population) == bytes(one_read.population)
    assert every_column(workspace) == rows
