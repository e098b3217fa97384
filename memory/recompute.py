"""Recompute a workspace's memory: population statistics, customer shards, one atomic swap.

1. ``recompute_population`` reads the events of a seeded sample of customer buckets and fits
   what is shared by everyone: label priors, message rates, the priming table, the baseline
   prior, the scoring model and the habituation curve. It is stored on the run.
2. ``recompute_shard`` reads one hash bucket of customers (customer_id mod shards), computes
   their weights, habituation loads and primed state with the population, and stores them on
   a RecomputeShard row (replaced on retry, so a re-delivered task is harmless).
3. ``recompute_finish`` swaps every shard's rows into the derived tables in one transaction,
   so readers see the old memory or the new, never half of each.

With Redis, Celery runs shards on any number of workers (a chord); without it, in-process.
An in-process full run on PostgreSQL streams instead: each bucket goes into the new partitions
while the next one computes (``_recompute_streamed``), and the swap ends the same transaction.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NamedTuple

import polars as pl
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import Workspace
from config.allocator import heap_kept
from memory.db import writeback
from memory.db.reads import (
    Catalogue,
    CustomerFilter,
    catalogue_of,
    events_frame,
    hours_since_epoch,
    trait_keys_of,
    traits_frame,
)
from memory.models import Customer, Event, RecomputeRun, RecomputeShard
from memory.scoring import sharded
from memory.scoring.frames import EngineConfig
from memory.scoring.model import ScoringModel

logger = logging.getLogger(__name__)

# At most this many tasks per run: a task costs ~2 ms of overhead and re-reads the catalogue.
MAX_SHARDS = 1000
# The population is fitted on at most about this many customers (whole buckets of them).
POPULATION_CUSTOMERS = 50_000
# An incremental run refreshes the population too, on a smaller sample: it must stay quick.
POPULATION_CUSTOMERS_INCREMENTAL = 5_000
# A population sample up to this size is read by customer ids (see population_filter).
SAMPLE_BY_IDS_MAX = 10_000
# An incremental run keeps the scoring model of a run at most this much older (see
# reusable_model); the nightly full run refits it.
MODEL_REUSE_AGE = timedelta(days=7)


def engine_config(workspace: Workspace) -> EngineConfig:
    """Return the engine configuration from the workspace's settings."""
    return EngineConfig(
        goal_event=workspace.goal_event,
        send_event=workspace.send_event,
        open_event=workspace.open_event,
        attribution_window_h=workspace.attribution_window_h,
        habituation_half_life_h=workspace.habituation_half_life_h,
        priming_horizon_h=workspace.priming_horizon_h,
    )


def shard_count(customers: int) -> int:
    """Return how many hash buckets to split this many customers into."""
    per_shard = settings.PRIMER_RECOMPUTE_CUSTOMERS_PER_SHARD
    return max(1, min(MAX_SHARDS, -(-customers // per_shard)))


def frame_to_bytes(frames: dict[str, pl.DataFrame]) -> bytes:
    """Serialise named frames as one Arrow IPC stream per frame, length-prefixed."""
    out = io.BytesIO()
    for name, frame in frames.items():
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="zstd")
        payload = buffer.getvalue()
        encoded = name.encode()
        out.write(len(encoded).to_bytes(2, "big") + encoded)
        out.write(len(payload).to_bytes(8, "big") + payload)
    return out.getvalue()


def frames_from_bytes(blob: bytes) -> dict[str, pl.DataFrame]:
    """Read frames written by ``frame_to_bytes``."""
    view, frames, at = memoryview(blob), {}, 0
    while at < len(view):
        name_len = int.from_bytes(view[at : at + 2], "big")
        name = bytes(view[at + 2 : at + 2 + name_len]).decode()
        at += 2 + name_len
        size = int.from_bytes(view[at : at + 8], "big")
        frames[name] = pl.read_ipc(io.BytesIO(bytes(view[at + 8 : at + 8 + size])))
        at += 8 + size
    return frames


def default_as_of(*, workspace: Workspace) -> datetime:
    """Return 'now' for the workspace: the present, or just after its latest event if earlier.

    Imported history (the Starbucks demo ends in 2018) is then seen as of its own end, so
    recency means something; a live workspace's latest event is about now anyway.
    """
    latest = (
        Event.objects.for_workspace(workspace)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )
    now = timezone.now()
    return now if latest is None else min(now, latest + timedelta(seconds=1))


def recompute_start(
    *,
    workspace: Workspace,
    as_of: datetime | None = None,
    customer_ids: list[int] | None = None,
    mode: str = RecomputeRun.Mode.FULL,
) -> RecomputeRun:
    """Create a queued run: fix its as-of time, its customers and how many shards they take."""
    customers = (
        len(customer_ids)
        if customer_ids is not None
        else Customer.objects.for_workspace(workspace).count()
    )
    shards = 1 if customer_ids is not None else shard_count(customers)
    stats = {"trait_keys": trait_keys_of(workspace=workspace)}
    if customer_ids is not None:
        stats["customer_ids"] = customer_ids
    return RecomputeRun.objects.create(
        workspace=workspace,
        mode=mode,
        as_of=as_of or default_as_of(workspace=workspace),
        shards_total=shards,
        customers=customers,
        stats=stats,
    )


# Past this many changed customers an incremental run is a full one: it would cost about the
# same, and an id list this long would pass the databases' limits on query parameters.
INCREMENTAL_MAX_CUSTOMERS = 20_000


def recompute_incremental_customers(*, workspace: Workspace) -> list[int] | None:
    """Return ids of customers with events received since the last successful run started.

    None means everyone: there is no earlier run, or too many customers changed.
    """
    last = (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status=RecomputeRun.Status.SUCCEEDED)
        .order_by("-started_at")
        .first()
    )
    if last is None or last.started_at is None:
        return None
    changed = list(
        Event.objects.for_workspace(workspace)
        .filter(received_at__gte=last.started_at)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
        .distinct()[: INCREMENTAL_MAX_CUSTOMERS + 1]
    )
    return None if len(changed) > INCREMENTAL_MAX_CUSTOMERS else changed


def population_filter(
    *, workspace: Workspace, customers: int = POPULATION_CUSTOMERS
) -> CustomerFilter:
    """Choose whole buckets so the population sample holds about `customers` people.

    A small sample is named by its customer ids, so its events are read through the
    (customer, time) index rather than by scanning every event for the bucket's remainder.
    """
    total = Customer.objects.for_workspace(workspace).count()
    buckets = max(1, -(-total // customers))
    if buckets == 1:
        return CustomerFilter()
    if customers > SAMPLE_BY_IDS_MAX:
        return CustomerFilter(shard=0, shards=buckets)
    ids = (
        Customer.objects.for_workspace(workspace)
        .annotate(bucket=F("id") % buckets)
        .filter(bucket=0)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return CustomerFilter(customer_ids=tuple(ids))


def _run_filter(run: RecomputeRun, index: int) -> CustomerFilter:
    ids = run.stats.get("customer_ids")
    if ids is not None:
        return CustomerFilter(customer_ids=tuple(ids))
    if run.shards_total == 1:
        return CustomerFilter()
    return CustomerFilter(shard=index, shards=run.shards_total)


@heap_kept()
def recompute_population(*, run_id: int, preloaded: EngineInputs | None = None) -> None:
    """Fit the population statistics of a run and store them on it (idempotent).

    `preloaded`: every customer's inputs, already read by an in-process run; else read here.
    """
    run = RecomputeRun.objects.all_workspaces().select_related("workspace").get(pk=run_id)
    if run.population is not None:
        return
    _population_store(run, _population_fit(run, preloaded))


def _population_fit(run: RecomputeRun, preloaded: EngineInputs | None) -> sharded.PopulationFit:
    """Mark the run running and fit the statistics shards need on its population sample.

    The fit's other steps (habituation curve, replayed slices, scoring model) are left to
    take: ``_population_store`` takes any left.
    """
    RecomputeRun.objects.all_workspaces().filter(pk=run.pk).update(
        status=RecomputeRun.Status.RUNNING, started_at=timezone.now()
    )
    trait_keys = run.stats["trait_keys"]
    sample = population_filter(
        workspace=run.workspace,
        customers=POPULATION_CUSTOMERS_INCREMENTAL
        if run.mode == RecomputeRun.Mode.INCREMENTAL
        else POPULATION_CUSTOMERS,
    )
    if preloaded is not None:
        inputs = preloaded.subset(sample)
    else:
        inputs = engine_inputs(
            workspace=run.workspace, as_of=run.as_of, customers=sample, trait_keys=trait_keys
        )
    config = engine_config(run.workspace)
    return sharded.fit_statistics(
        events=inputs.events,
        messages=inputs.catalogue.messages,
        message_labels=inputs.catalogue.message_labels,
        config=config,
        horizon=hours_since_epoch(run.as_of),
        traits=inputs.engine_traits,
        model=reusable_model(run, config) if run.mode == RecomputeRun.Mode.INCREMENTAL else None,
    )


def _population_store(run: RecomputeRun, fit: sharded.PopulationFit) -> sharded.Population:
    """Take the fit's steps left and store the whole population on the run."""
    population, _ = fit.finish()
    run.refresh_from_db(fields=["stats", "timings"])
    RecomputeRun.objects.all_workspaces().filter(pk=run.pk).update(
        population=population.to_bytes(),
        stats={**run.stats, **population.summary()},
        timings={**run.timings, "population_s": round(fit.seconds, 3)},
    )
    return population


def reusable_model(run: RecomputeRun, config: EngineConfig) -> ScoringModel | None:
    """Return the scoring model of the workspace's last good run, if an incremental run may
    keep it: fitted with the same configuration, on history at most MODEL_REUSE_AGE older."""
    previous = (
        RecomputeRun.objects.for_workspace(run.workspace)
        .filter(
            status=RecomputeRun.Status.SUCCEEDED,
            population__isnull=False,
            as_of__gte=run.as_of - MODEL_REUSE_AGE,
            as_of__lte=run.as_of,
        )
        .order_by("-finished_at")
        .only("population")
        .first()
    )
    if previous is None:
        return None
    population = sharded.Population.from_bytes(bytes(previous.population))
    return population.model if population.config == config else None


@dataclass
class EngineInputs:
    """Frames for the engine, in its dense indices, and the database ids behind them."""

    events: pl.DataFrame
    traits: pl.DataFrame | None  # with customer_id as well as the dense customer
    customer_ids: pl.Series  # database id of dense customer i at position i
    catalogue: Catalogue

    @classmethod
    def indexed(
        cls, events: pl.DataFrame, traits: pl.DataFrame | None, catalogue: Catalogue
    ) -> EngineInputs:
        """Give customers dense indices in id order, and messages the catalogue's indices."""
        customer_ids = events["customer_id"].unique().sort()
        mapping = pl.DataFrame(
            {
                "customer_id": customer_ids,
                "customer": pl.int_range(0, customer_ids.len(), eager=True, dtype=pl.Int64),
            }
        )
        events = events.drop("customer", "message", strict=False)
        events = events.join(mapping, on="customer_id", how="left").with_columns(
            catalogue.message_index(events["message_id"]).alias("message")
        )
        if traits is not None:
            traits = traits.drop("customer", strict=False).join(mapping, on="customer_id")
        return cls(events=events, traits=traits, customer_ids=customer_ids, catalogue=catalogue)

    def subset(self, customers: CustomerFilter) -> EngineInputs:
        """Return the inputs of some customers only, re-indexed as if read on their own."""
        traits = (
            self.traits.filter(customers.expr("customer_id")) if self.traits is not None else None
        )
        return EngineInputs.indexed(
            self.events.filter(customers.expr("customer_id")), traits, self.catalogue
        )

    def buckets(self, shards: int) -> Iterator[EngineInputs]:
        """Yield each hash bucket's inputs in turn, as ``subset`` would give them.

        The events are split into buckets in one pass: filtering every event once per bucket
        cost a full run at 10M events several seconds.
        """
        if shards == 1:
            yield self.subset(CustomerFilter())
            return
        parts = self.events.with_columns(
            (pl.col("customer_id") % shards).alias("_bucket")
        ).partition_by("_bucket", as_dict=True, include_key=False, maintain_order=True)
        for index in range(shards):
            bucket = CustomerFilter(shard=index, shards=shards)
            events = parts.pop((index,), None)
            traits = (
                self.traits.filter(bucket.expr("customer_id")) if self.traits is not None else None
            )
            yield EngineInputs.indexed(
                self.events.clear() if events is None else events, traits, self.catalogue
            )

    @property
    def engine_traits(self) -> pl.DataFrame | None:
        return self.traits.drop("customer_id") if self.traits is not None else None


def engine_inputs(
    *,
    workspace: Workspace,
    as_of: datetime | None,
    customers: CustomerFilter,
    trait_keys: list[str],
) -> EngineInputs:
    """Read events (and traits) of some customers before as_of, with dense indices."""
    traits = (
        traits_frame(workspace=workspace, keys=trait_keys, customers=customers)
        if trait_keys
        else None
    )
    return EngineInputs.indexed(
        events_frame(workspace=workspace, before=as_of, customers=customers),
        traits,
        catalogue_of(workspace=workspace),
    )


@heap_kept()
def recompute_shard(
    *,
    run_id: int,
    index: int,
    preloaded: EngineInputs | None = None,
    collected: list[ShardResult] | None = None,
) -> None:
    """Compute one bucket of customers with the run's population; store the rows (idempotent).

    `collected`: an in-process run's list to append the rows to, instead of storing them on
    a RecomputeShard row for whichever process finishes the run.
    """
    run = RecomputeRun.objects.all_workspaces().select_related("workspace").get(pk=run_id)
    if run.status == RecomputeRun.Status.SUCCEEDED:
        return  # a late duplicate of a shard whose run was already swapped in
    started = time.perf_counter()
    bucket = _run_filter(run, index)
    if preloaded is not None:
        inputs = preloaded.subset(bucket)
    else:
        inputs = engine_inputs(
            workspace=run.workspace,
            as_of=run.as_of,
            customers=bucket,
            trait_keys=run.stats.get("trait_keys", []),
        )
    population = sharded.Population.from_bytes(bytes(run.population))
    frames = shard_frames(run=run, population=population, inputs=inputs)
    if collected is not None:
        collected.append(ShardResult(frames, inputs.events.height, time.perf_counter() - started))
        RecomputeRun.objects.all_workspaces().filter(pk=run.pk).update(shards_done=len(collected))
        return
    RecomputeShard.objects.update_or_create(
        run=run,
        index=index,
        defaults={
            "customers": inputs.customer_ids.len(),
            "events": inputs.events.height,
            "payload": frame_to_bytes(frames),
            "seconds": time.perf_counter() - started,
            "finished_at": timezone.now(),
        },
    )
    done = RecomputeShard.objects.filter(run=run).count()
    RecomputeRun.objects.all_workspaces().filter(pk=run.pk).update(shards_done=done)


def shard_frames(
    *, run: RecomputeRun, population: sharded.Population, inputs: EngineInputs
) -> dict[str, pl.DataFrame]:
    """Return one bucket's derived rows (weights, habituation, state) keyed by database ids."""
    result = sharded.customer_memory(
        events=inputs.events,
        population=population,
        horizon=hours_since_epoch(run.as_of),
        traits=inputs.engine_traits,
    )
    return writeback.to_database_ids(
        result, customer_ids=inputs.customer_ids, catalogue=inputs.catalogue
    )


class ShardResult(NamedTuple):
    """A shard's derived rows kept in memory by an in-process run, with its tallies."""

    frames: dict[str, pl.DataFrame] | None  # None once written into a PartitionBuild
    events: int
    seconds: float


@heap_kept()
def recompute_finish(
    *,
    run_id: int,
    collected: list[ShardResult] | None = None,
    built: writeback.PartitionBuild | None = None,
) -> RecomputeRun:
    """Swap the run's shard rows into the derived tables in one transaction (idempotent).

    `collected`: the shards an in-process run kept in memory; else their RecomputeShard rows.
    `built`: the new partitions those shards were written into already (a streamed run).
    """
    run = RecomputeRun.objects.all_workspaces().select_related("workspace").get(pk=run_id)
    if run.status == RecomputeRun.Status.SUCCEEDED:
        return run
    started = time.perf_counter()
    if collected is None:
        stored = list(RecomputeShard.objects.filter(run=run).order_by("index"))
        missing = set(range(run.shards_total)) - {shard.index for shard in stored}
        if missing:
            raise RuntimeError(f"Run {run.pk} cannot finish: shards {sorted(missing)} are missing.")
        collected = [
            ShardResult(frames_from_bytes(bytes(shard.payload)), shard.events, shard.seconds)
            for shard in stored
        ]
    elif len(collected) != run.shards_total:
        raise RuntimeError(
            f"Run {run.pk} cannot finish: {len(collected)} shards of {run.shards_total}."
        )
    shards = collected
    parts = [shard.frames for shard in shards] if built is None else []
    population = sharded.Population.from_bytes(bytes(run.population))
    priming = writeback.priming_rows(population)
    customer_ids = run.stats.get("customer_ids")
    with transaction.atomic():
        counts = writeback.swap(
            workspace=run.workspace,
            parts=parts,
            priming=priming,
            customer_ids=customer_ids,
            computed_at=run.as_of,
            built=built,
        )
        RecomputeRun.objects.all_workspaces().filter(pk=run.pk).update(
            status=RecomputeRun.Status.SUCCEEDED,
            finished_at=timezone.now(),
            events=sum(shard.events for shard in shards),
            shards_done=len(shards),
            stats={**run.stats, "rows": counts},
            timings={
                **run.timings,
                "shards_s": round(sum(shard.seconds for shard in shards), 3),
                "swap_s": round(time.perf_counter() - started, 3),
            },
        )
        RecomputeShard.objects.filter(run=run).delete()
    # Registered webhooks receive the prompts this memory changed (a no-op without webhooks).
    from campaigns.tasks import webhooks_deliver_changed_prompts_task

    webhooks_deliver_changed_prompts_task.delay_on_commit(run.workspace_id, run.pk)
    run.refresh_from_db()
    return run


def recompute_fail(*, run_id: int, error: str) -> None:
    """Mark a run failed with the reason; the derived tables keep the previous memory."""
    RecomputeRun.objects.all_workspaces().filter(pk=run_id).exclude(
        status=RecomputeRun.Status.SUCCEEDED
    ).update(status=RecomputeRun.Status.FAILED, error=error[:5000], finished_at=timezone.now())


@heap_kept()
def memory_recompute(
    *,
    workspace: Workspace,
    as_of: datetime | None = None,
    customers: list[int] | None = None,
    incremental: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> RecomputeRun:
    """Recompute in this process: population, every shard, then the swap."""
    if incremental:
        customers = recompute_incremental_customers(workspace=workspace)
    mode = RecomputeRun.Mode.INCREMENTAL if customers is not None else RecomputeRun.Mode.FULL
    run = recompute_start(workspace=workspace, as_of=as_of, customer_ids=customers, mode=mode)
    try:
        # One read of every event serves the population sample and every shard; an
        # incremental run reads only its few customers, while the population fits.
        if customers is None:
            preloaded, fit = _read_and_fit(run)
            if writeback.partitioned():
                return _recompute_streamed(
                    run_id=run.pk, preloaded=preloaded, fit=fit, on_progress=on_progress
                )
            _population_store(run, fit)
        else:
            preloaded = _fit_while_reading_customers(run)
        collected: list[ShardResult] = []
        for index in range(run.shards_total):
            recompute_shard(run_id=run.pk, index=index, preloaded=preloaded, collected=collected)
            if on_progress:
                on_progress(index + 1, run.shards_total)
        return recompute_finish(run_id=run.pk, collected=collected)
    except Exception as error:
        recompute_fail(run_id=run.pk, error=f"{type(error).__name__}: {error}")
        raise


def _read_and_fit(run: RecomputeRun) -> tuple[EngineInputs, sharded.PopulationFit]:
    """Read every customer's inputs and fit the population statistics on the run's sample.

    Returns the inputs and the fit, whose other steps (curve, replayed slices, model) are left
    for the caller to take while it waits on something else.

    On PostgreSQL, outside a transaction (another connection must see the events), the sample
    is read first and fitted while a second connection reads everyone else: PostgreSQL's
    aggregation of those events and the fit run on the two cores at once; if the read is
    still going once the statistics are fitted, the fit's other steps fill the wait. Same
    inputs and population either way: the engine does not depend on the order of the event
    rows, nor the population on when its steps run.
    """
    workspace, keys = run.workspace, run.stats["trait_keys"]
    sample = population_filter(workspace=workspace, customers=POPULATION_CUSTOMERS)
    started = time.perf_counter()
    if not sample.shards or connection.vendor != "postgresql" or connection.in_atomic_block:
        preloaded = engine_inputs(
            workspace=workspace, as_of=run.as_of, customers=CustomerFilter(), trait_keys=keys
        )
        _timings_add(run, read_s=time.perf_counter() - started)
        return preloaded, _population_fit(run, preloaded)
    # Everyone's traits in one read, so each trait column gets the type it always had.
    traits = traits_frame(workspace=workspace, keys=keys) if keys else None
    catalogue = catalogue_of(workspace=workspace)
    events = events_frame(workspace=workspace, before=run.as_of, customers=sample)
    sampled = traits.filter(sample.expr("customer_id")) if traits is not None else None
    _timings_add(run, read_s=time.perf_counter() - started)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Not before: two reads at once would only share the cores the fit needs after them.
        others = pool.submit(
            _on_own_connection(events_frame),
            workspace=workspace,
            before=run.as_of,
            customers=replace(sample, other_shards=True),
        )
        fit = _population_fit(run, EngineInputs.indexed(events, sampled, catalogue))
        while not others.done() and fit.step():
            pass
        waited = time.perf_counter()
        rest = others.result()
    _timings_add(run, read_wait_s=time.perf_counter() - waited)
    return EngineInputs.indexed(pl.concat([events, rest]), traits, catalogue), fit


def _fit_while_reading_customers(run: RecomputeRun) -> EngineInputs | None:
    """Fit the population of a run for some customers while another connection reads theirs.

    Returns their inputs, or None where a second connection cannot see the events (SQLite, or
    inside a transaction): the shard reads them itself then.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        recompute_population(run_id=run.pk)
        return None
    with ThreadPoolExecutor(max_workers=1) as pool:
        theirs = pool.submit(
            _on_own_connection(engine_inputs),
            workspace=run.workspace,
            as_of=run.as_of,
            customers=_run_filter(run, 0),
            trait_keys=run.stats["trait_keys"],
        )
        recompute_population(run_id=run.pk)
        return theirs.result()


def _on_own_connection(read: Callable) -> Callable:
    """Wrap a read for another thread: it gets a connection of its own, closed after."""

    def read_and_close(**kwargs):
        try:
            return read(**kwargs)
        finally:
            connection.close()

    return read_and_close


def _timings_add(run: RecomputeRun, **seconds: float) -> None:
    run.timings = {**run.timings, **{name: round(value, 3) for name, value in seconds.items()}}
    RecomputeRun.objects.all_workspaces().filter(pk=run.pk).update(timings=run.timings)


def _recompute_streamed(
    *,
    run_id: int,
    preloaded: EngineInputs,
    fit: sharded.PopulationFit,
    on_progress: Callable[[int, int], None] | None,
) -> RecomputeRun:
    """Compute every bucket here while a thread writes the one before into the new partitions.

    The same rows as storing every bucket, then swapping them in; but PostgreSQL's COPY of a
    bucket runs on the second core while the next one computes, and no bucket stays in memory.
    The population's steps that buckets do not need (curve, replayed slices, model) are taken
    while the write is behind, and after the last bucket while PostgreSQL builds the indexes;
    the population is stored on the run in the transaction that swaps the rows in.
    """
    run = RecomputeRun.objects.all_workspaces().select_related("workspace").get(pk=run_id)
    population = fit.population  # its statistics: all a bucket needs
    tallies: list[ShardResult] = []
    with _ProgressPost(run.pk) as progress, transaction.atomic():
        with writeback.PartitionBuild(
            workspace_id=run.workspace_id, computed_at=run.as_of
        ) as build:
            # From here until the swap the build thread owns this connection.
            buckets = preloaded.buckets(run.shards_total)
            for index in range(run.shards_total):
                started = time.perf_counter()
                inputs = next(buckets)
                frames = shard_frames(run=run, population=population, inputs=inputs)
                seconds = time.perf_counter() - started
                tallies.append(ShardResult(None, inputs.events.height, seconds))
                while build.behind() and fit.step():
                    pass
                build.add(frames)
                progress.post(len(tallies))
                if on_progress:
                    on_progress(index + 1, run.shards_total)
            computed, steps_after_shards = time.perf_counter(), fit.steps_left
            while fit.step():
                pass
            fitted = time.perf_counter()
        # What the write had left to do (COPY, index builds) once the population was whole.
        run.refresh_from_db(fields=["timings"])
        run.timings = {
            **run.timings,
            "fit_after_shards_s": round(fitted - computed, 3),
            "fit_steps_after_shards": steps_after_shards,
            "write_wait_s": round(time.perf_counter() - fitted, 3),
        }
        RecomputeRun.objects.all_workspaces().filter(pk=run.pk).update(timings=run.timings)
        _population_store(run, fit)
        return recompute_finish(run_id=run.pk, collected=tallies, built=build)


class _ProgressPost:
    """Post a run's shards_done on a connection of its own, since the run's own connection is
    busy with (and its transaction hides) the partition build."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.connection = connections.create_connection(DEFAULT_DB_ALIAS)

    def __enter__(self) -> _ProgressPost:
        return self

    def __exit__(self, *exc) -> None:
        self.connection.close()

    def post(self, done: int) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {RecomputeRun._meta.db_table} SET shards_done = %s WHERE id = %s",
                [done, self.run_id],
            )


# Debounce: after ingestion, one incremental recompute per workspace per this many seconds.
DEBOUNCE_S = 60


def pending_key(workspace_id: int) -> str:
    return f"primer:recompute-pending:{workspace_id}"


def recompute_shard_indices(*, run_id: int) -> list[int]:
    """Return the shard indices of a run that have no stored result yet."""
    run = RecomputeRun.objects.all_workspaces().get(pk=run_id)
    done = set(RecomputeShard.objects.filter(run=run).values_list("index", flat=True))
    return [index for index in range(run.shards_total) if index not in done]


def recompute_enqueue(
    *,
    workspace_id: int,
    as_of: datetime | None = None,
    incremental: bool = False,
) -> RecomputeRun:
    """Start a recompute on the Celery workers (in-process when there is no broker)."""
    workspace = Workspace.objects.get(pk=workspace_id)
    customers = recompute_incremental_customers(workspace=workspace) if incremental else None
    mode = RecomputeRun.Mode.INCREMENTAL if customers is not None else RecomputeRun.Mode.FULL
    run = recompute_start(workspace=workspace, as_of=as_of, customer_ids=customers, mode=mode)
    _dispatch_after_commit(run.pk)
    return run


def _dispatch_after_commit(run_id: int) -> None:
    """Queue population, then the shards' chord, once the run's row is committed."""
    from memory import tasks

    transaction.on_commit(
        lambda: (
            (tasks.recompute_population.si(run_id) | tasks.recompute_dispatch.si(run_id))
            .on_error(tasks.recompute_failed.s(run_id))
            .delay()
        )
    )


def recompute_resume(*, run_id: int) -> None:
    """Re-dispatch a run's missing shards (e.g. after a worker died); finished ones stay."""
    run = RecomputeRun.objects.all_workspaces().get(pk=run_id)
    if run.status == RecomputeRun.Status.SUCCEEDED:
        return
    RecomputeRun.objects.all_workspaces().filter(pk=run_id).update(
        status=RecomputeRun.Status.RUNNING, error=""
    )
    _dispatch_after_commit(run_id)


def recompute_schedule(*, workspace_id: int) -> bool:
    """Ask for an incremental recompute soon, at most one per DEBOUNCE_S; True if queued now.

    Without a broker (the laptop demo) nothing is queued: new events wait for the next
    recompute asked for on the page or the command line, so ingestion never computes inline.
    """
    from memory import tasks

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return False
    if not cache.add(pending_key(workspace_id), 1, timeout=DEBOUNCE_S):
        return False
    transaction.on_commit(
        lambda: tasks.recompute_workspace.apply_async((workspace_id,), countdown=DEBOUNCE_S)
    )
    return True


def workspace_ids() -> list[int]:
    return list(Workspace.objects.order_by("pk").values_list("pk", flat=True))
