"""Where a run's steps run: here, bucket by bucket, or here streaming into new partitions.

Every runner takes a plan and returns its run; ``memory.recompute.chord`` runs on workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from config.allocator import heap_kept
from memory.db import writeback
from memory.models import RecomputeRun
from memory.recompute.inputs import EngineInputs, engine_inputs
from memory.recompute.overlap import customers_read_while_fitting, everyone_read_and_fit
from memory.recompute.plan import RecomputePlan
from memory.recompute.steps import (
    PendingNextBest,
    ShardResult,
    population_store,
    run_fail,
    run_finish,
    run_timings_add,
    shard_compute,
    shards_done_post,
)
from memory.scoring import sharded

Progress = Callable[[int, int], None]  # (shards done, shards in all)


class Runner(Protocol):
    def run(self, plan: RecomputePlan) -> RecomputeRun:
        """Compute the planned run (or queue it) and return it."""
        ...


@dataclass
class InProcessRunner:
    """Run here: the population, every bucket kept in memory, then the swap."""

    on_progress: Progress | None = None

    @heap_kept()
    def run(self, plan: RecomputePlan) -> RecomputeRun:
        plan = plan.with_reusable_model()
        try:
            # One read of every event serves the population sample and every shard; an
            # incremental run reads only its few customers, while the population fits.
            if plan.customer_ids is None:
                everyone, fit = everyone_read_and_fit(plan=plan)
                population = population_store(plan=plan, fit=fit)
            else:
                everyone, population = customers_read_while_fitting(plan=plan)
            shards: list[ShardResult] = []
            for index in range(plan.shards):
                started = time.perf_counter()
                inputs = _bucket_inputs(plan, everyone, index)
                shard = shard_compute(plan=plan, population=population, inputs=inputs)
                shards.append(shard._replace(seconds=time.perf_counter() - started))
                shards_done_post(plan=plan, done=len(shards))
                if self.on_progress:
                    self.on_progress(index + 1, plan.shards)
            return run_finish(plan=plan, population=population, shards=shards)
        except Exception as error:
            run_fail(run_id=plan.run_id, error=f"{type(error).__name__}: {error}")
            raise


def _bucket_inputs(plan: RecomputePlan, everyone: EngineInputs | None, index: int) -> EngineInputs:
    if everyone is not None:
        return everyone.subset(plan.bucket(index))
    return engine_inputs(
        workspace=plan.workspace,
        as_of=plan.as_of,
        customers=plan.bucket(index),
        trait_keys=plan.trait_keys,
    )


@dataclass
class StreamedRunner:
    """Run a full recompute here, writing each bucket into the new partitions as it goes.

    PostgreSQL's COPY of a bucket runs on the second core while the next one computes, and no
    bucket stays in memory (docs/decisions/0102-streamed-partition-build.md).
    """

    on_progress: Progress | None = None

    @heap_kept()
    def run(self, plan: RecomputePlan) -> RecomputeRun:
        try:
            everyone, fit = everyone_read_and_fit(plan=plan)
            return self._stream(plan, everyone, fit)
        except Exception as error:
            run_fail(run_id=plan.run_id, error=f"{type(error).__name__}: {error}")
            raise

    def _stream(
        self, plan: RecomputePlan, everyone: EngineInputs, fit: sharded.PopulationFit
    ) -> RecomputeRun:
        """Compute every bucket while a thread writes the one before into the new partitions.

        The population's steps buckets do not need (curve, replayed slices, model) are taken
        while the write is behind, and after the last bucket while PostgreSQL builds the
        indexes; the population is stored in the transaction that swaps the rows in.
        """
        statistics = fit.population  # all a bucket needs (but the model next best lists need)
        tallies: list[ShardResult] = []
        pending: list[PendingNextBest] = []
        with _ProgressPost(plan.run_id) as progress, transaction.atomic():
            with writeback.PartitionBuild(
                workspace_id=plan.workspace.pk, computed_at=plan.as_of
            ) as build:
                # From here until the swap the build thread owns this connection.
                buckets = everyone.buckets(plan.shards)
                for index in range(plan.shards):
                    started = time.perf_counter()
                    shard = shard_compute(plan=plan, population=statistics, inputs=next(buckets))
                    tallies.append(
                        shard._replace(
                            frames=None, pending=None, seconds=time.perf_counter() - started
                        )
                    )
                    if shard.pending is not None:
                        pending.append(shard.pending)
                    while build.behind() and fit.step():
                        pass
                    build.add(shard.frames)
                    progress.post(len(tallies))
                    if self.on_progress:
                        self.on_progress(index + 1, plan.shards)
                computed, steps_after_shards = time.perf_counter(), fit.steps_left
                whole = fit.finish().population
                fitted = time.perf_counter()
                while pending:  # ranked with the model, written as the others were
                    build.add(pending.pop(0).frames(whole))
                ranked = time.perf_counter()
            # What the write had left to do (COPY, index builds) once the population was whole.
            run_timings_add(
                plan=plan,
                fit_after_shards_s=fitted - computed,
                fit_steps_after_shards=steps_after_shards,
                next_best_after_fit_s=ranked - fitted,
                write_wait_s=time.perf_counter() - ranked,
            )
            population = population_store(plan=plan, fit=fit)
            return run_finish(plan=plan, population=population, shards=tallies, built=build)


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
