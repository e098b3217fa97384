"""A run's steps, each on explicit inputs: fit the population, compute a bucket, swap it in.

``population_fit`` and ``shard_compute`` are pure (frames in, frames out); the other steps read
or write the run's rows, by its id.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import NamedTuple

import polars as pl
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from memory.db import writeback
from memory.db.reads import Catalogue, catalogue_of
from memory.models import RecomputeRun, RecomputeShard
from memory.recompute.inputs import EngineInputs, engine_inputs, population_sample
from memory.recompute.plan import RecomputePlan
from memory.scoring import sharded
from memory.signals import memory_recomputed


class ShardResult(NamedTuple):
    """One bucket's derived rows, with its tallies."""

    frames: dict[str, pl.DataFrame] | None  # None once written into a PartitionBuild
    customers: int
    events: int
    seconds: float
    # Next best lists to rank once the population's model is fitted (a streamed run).
    pending: PendingNextBest | None = None


@dataclass
class PendingNextBest:
    """A bucket's next best lists, ranked once the population's model is fitted."""

    later: sharded.NextBestLater
    customer_ids: pl.Series
    catalogue: Catalogue

    def frames(self, population: sharded.Population) -> dict[str, pl.DataFrame]:
        """Return the bucket's next best rows keyed by database ids."""
        ranked = self.later.rows(population.model)
        customers = writeback.customer_index(self.customer_ids)
        return {
            "next_best": writeback.next_best_ids(
                ranked, customers=customers, catalogue=self.catalogue
            )
        }


def _runs():
    """Return the runs of every workspace (the steps name runs by id)."""
    return RecomputeRun.objects.all_workspaces()


def run_mark_running(*, plan: RecomputePlan) -> None:
    """Mark the run running from now."""
    _runs().filter(pk=plan.run_id).update(
        status=RecomputeRun.Status.RUNNING, started_at=timezone.now()
    )


def run_timings_add(*, plan: RecomputePlan, **seconds: float) -> None:
    """Add named durations (seconds) to the run's timings."""
    run = _runs().only("timings").get(pk=plan.run_id)
    rounded = {name: round(value, 3) for name, value in seconds.items()}
    _runs().filter(pk=plan.run_id).update(timings={**run.timings, **rounded})


def population_fit(*, plan: RecomputePlan, inputs: EngineInputs) -> sharded.PopulationFit:
    """Fit the statistics shards need on the population sample's inputs.

    The fit's other steps (habituation curve, replayed slices, scoring model) are left to
    take: ``population_store`` takes any left.
    """
    return sharded.fit_statistics(
        events=inputs.events,
        messages=inputs.catalogue.messages,
        message_labels=inputs.catalogue.message_labels,
        config=plan.config,
        horizon=plan.horizon,
        traits=inputs.engine_traits,
        model=plan.model,
    )


def population_store(*, plan: RecomputePlan, fit: sharded.PopulationFit) -> sharded.Population:
    """Take the fit's steps left and store the whole population on the run."""
    population = fit.finish().population
    run = _runs().only("stats", "timings").get(pk=plan.run_id)
    _runs().filter(pk=plan.run_id).update(
        population=population.to_bytes(),
        stats={**run.stats, **population.summary()},
        timings={**run.timings, "population_s": round(fit.seconds, 3)},
    )
    return population


def population_from_sample(*, plan: RecomputePlan) -> sharded.Population:
    """Mark the run running, read its population sample, fit the population and store it."""
    run_mark_running(plan=plan)
    sample = population_sample(workspace=plan.workspace, incremental=plan.incremental)
    inputs = engine_inputs(
        workspace=plan.workspace, as_of=plan.as_of, customers=sample, trait_keys=plan.trait_keys
    )
    return population_store(plan=plan, fit=population_fit(plan=plan, inputs=inputs))


def shard_compute(
    *, plan: RecomputePlan, population: sharded.Population, inputs: EngineInputs
) -> ShardResult:
    """Return one bucket's derived rows (weights, habituation, state, next best) keyed by
    database ids; next best lists wait as `pending` if the population has no model yet."""
    started = time.perf_counter()
    result, later = sharded.customer_memory_staged(
        events=inputs.events,
        population=population,
        horizon=plan.horizon,
        traits=inputs.engine_traits,
        next_best=inputs.catalogue.next_best_asked(settings.PRIMER_NEXT_BEST_STORED),
    )
    frames = writeback.to_database_ids(
        result, customer_ids=inputs.customer_ids, catalogue=inputs.catalogue
    )
    pending = (
        None if later is None else PendingNextBest(later, inputs.customer_ids, inputs.catalogue)
    )
    return ShardResult(
        frames,
        inputs.customer_ids.len(),
        inputs.events.height,
        time.perf_counter() - started,
        pending,
    )


def shards_done_post(*, plan: RecomputePlan, done: int) -> None:
    """Post how many of the run's shards are done."""
    _runs().filter(pk=plan.run_id).update(shards_done=done)


def shard_store(*, plan: RecomputePlan, index: int, shard: ShardResult) -> None:
    """Store a shard's rows on its RecomputeShard row (replaced on retry) and count it done."""
    RecomputeShard.objects.update_or_create(
        run_id=plan.run_id,
        index=index,
        defaults={
            "customers": shard.customers,
            "events": shard.events,
            "payload": frames_to_bytes(shard.frames),
            "seconds": shard.seconds,
            "finished_at": timezone.now(),
        },
    )
    done = RecomputeShard.objects.filter(run_id=plan.run_id).count()
    _runs().filter(pk=plan.run_id).update(shards_done=done)


def shards_load(*, plan: RecomputePlan) -> list[ShardResult]:
    """Return every stored shard of the run, in index order; raise if one is missing."""
    stored = list(RecomputeShard.objects.filter(run_id=plan.run_id).order_by("index"))
    missing = set(range(plan.shards)) - {shard.index for shard in stored}
    if missing:
        raise RuntimeError(
            f"Run {plan.run_id} cannot finish: shards {sorted(missing)} are missing."
        )
    return [
        ShardResult(
            frames_from_bytes(bytes(shard.payload)), shard.customers, shard.events, shard.seconds
        )
        for shard in stored
    ]


def shard_indices_left(*, plan: RecomputePlan) -> list[int]:
    """Return the shard indices of a run that have no stored result yet."""
    done = set(RecomputeShard.objects.filter(run_id=plan.run_id).values_list("index", flat=True))
    return [index for index in range(plan.shards) if index not in done]


def run_finish(
    *,
    plan: RecomputePlan,
    population: sharded.Population,
    shards: list[ShardResult],
    built: writeback.PartitionBuild | None = None,
) -> RecomputeRun:
    """Swap the shards' rows into the derived tables in one transaction (idempotent).

    `built`: the new partitions the shards were written into already (a streamed run).
    """
    run = _runs().get(pk=plan.run_id)
    if run.status == RecomputeRun.Status.SUCCEEDED:
        return run
    if len(shards) != plan.shards:
        raise RuntimeError(f"Run {run.pk} cannot finish: {len(shards)} shards of {plan.shards}.")
    started = time.perf_counter()
    cold_start = cold_start_rows(plan=plan, population=population)
    with transaction.atomic():
        counts = writeback.swap(
            workspace=plan.workspace,
            parts=[shard.frames for shard in shards] if built is None else [],
            priming=writeback.priming_rows(population),
            customer_ids=None if plan.customer_ids is None else list(plan.customer_ids),
            computed_at=plan.as_of,
            built=built,
            cold_start=cold_start,
        )
        _runs().filter(pk=run.pk).update(
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
    # Other apps react to the new memory (campaigns sends webhooks) once it is committed.
    transaction.on_commit(
        lambda: memory_recomputed.send(
            sender=RecomputeRun, workspace_id=plan.workspace.pk, run_id=plan.run_id
        )
    )
    run.refresh_from_db()
    return run


def cold_start_rows(*, plan: RecomputePlan, population: sharded.Population) -> pl.DataFrame:
    """Return the population's next best list (for customers without events), by database ids."""
    catalogue = catalogue_of(workspace=plan.workspace)
    ranked = sharded.cold_start_next_best(
        population=population,
        horizon=plan.horizon,
        next_best=catalogue.next_best_asked(settings.PRIMER_NEXT_BEST_STORED),
    )
    return writeback.next_best_ids(ranked, customers=None, catalogue=catalogue)


def run_fail(*, run_id: int, error: str) -> None:
    """Mark a run failed with the reason; the derived tables keep the previous memory."""
    _runs().filter(pk=run_id).exclude(status=RecomputeRun.Status.SUCCEEDED).update(
        status=RecomputeRun.Status.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def frames_to_bytes(frames: dict[str, pl.DataFrame]) -> bytes:
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
    """Read frames written by ``frames_to_bytes``."""
    view, frames, at = memoryview(blob), {}, 0
    while at < len(view):
        name_len = int.from_bytes(view[at : at + 2], "big")
        name = bytes(view[at + 2 : at + 2 + name_len]).decode()
        at += 2 + name_len
        size = int.from_bytes(view[at : at + 8], "big")
        frames[name] = pl.read_ipc(io.BytesIO(bytes(view[at + 8 : at + 8 + size])))
        at += 8 + size
    return frames
