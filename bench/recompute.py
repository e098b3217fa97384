"""Time the engine's sharded recompute on synthetic workspaces (pure engine, no database).

For each size: generate a workspace, fit the population on a sample of whole hash buckets (about
50k customers, everyone when fewer), then compute every bucket of about 20k customers from its
own events, as ``memory.recompute`` does. Prints wall time, CPU time (polars uses both cores, so
CPU can exceed wall; on a busy machine wall grows, CPU much less), events/s and peak RSS.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.scoring.sharded import Population, customer_memory, fit_population
from memory.scoring.synthetic import synthetic_workspace

# The same sizes as memory.recompute: coarse shards, a population of whole buckets.
CUSTOMERS_PER_SHARD = 20_000
POPULATION_CUSTOMERS = 50_000
SIZES = {"1M": (20_000, 1_000_000), "10M": (200_000, 10_000_000)}


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB (children separately)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def buckets(events: pl.DataFrame, n_customers: int, count: int) -> list[pl.DataFrame]:
    """Split events into hash buckets (customer mod count), each with dense customer indices."""
    keyed = events.with_columns(
        (pl.col("customer") % count).alias("bucket"), (pl.col("customer") // count)
    )
    parts = keyed.partition_by("bucket", as_dict=True, include_key=False)
    return [parts.get((index,), keyed.clear().drop("bucket")) for index in range(count)]


def shard_memory(
    events: pl.DataFrame, blob: bytes, horizon: float
) -> tuple[float, float, int, int, float]:
    """Compute one shard as a worker would (population read from bytes); return timings."""
    started, cpu = time.perf_counter(), time.process_time()
    population = Population.from_bytes(blob)
    frames = customer_memory(events=events, population=population, horizon=horizon)
    rows = sum(frame.height for frame in frames.values())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return wall, cpu, events.height, rows, peak_rss_mb()


def warm_up(_: int) -> None:
    """Import the engine in a worker process before the clock starts."""


def run(name: str, workers: int, seed: int) -> None:
    """Generate one workspace size and print the timings of each recompute step."""
    n_customers, n_events = SIZES[name]
    started = time.perf_counter()
    workspace = synthetic_workspace(n_customers, n_events, seed=seed)
    events = workspace.events
    generated = time.perf_counter() - started
    horizon = workspace.span_h
    print(
        f"\n== {name}: {events.height:,} events, {n_customers:,} customers "
        f"(generated in {generated:.1f} s)"
    )

    sample_buckets = max(1, -(-n_customers // POPULATION_CUSTOMERS))
    sample = buckets(events, n_customers, sample_buckets)[0] if sample_buckets > 1 else events
    started, cpu = time.perf_counter(), time.process_time()
    population = fit_population(
        events=sample,
        messages=workspace.messages,
        message_labels=workspace.message_labels,
        config=workspace.config,
        horizon=horizon,
    )
    fitted, fitted_cpu = time.perf_counter() - started, time.process_time() - cpu
    blob = population.to_bytes()
    print(
        f"fit_population   {fitted:6.2f} s  (CPU {fitted_cpu:5.2f} s)  "
        f"{sample.height / fitted:12,.0f} events/s  "
        f"({sample.height:,} events, {int(population.stats['customers']):,} customers; "
        f"population {len(blob) / 1024:.0f} KiB)  peak RSS {peak_rss_mb():,.0f} MB"
    )

    count = max(1, -(-n_customers // CUSTOMERS_PER_SHARD))
    shards = buckets(events, n_customers, count)
    del workspace, events, sample
    started = time.perf_counter()
    if workers > 1:
        # Spawned, not forked: a fork of a process whose polars thread pool is running deadlocks.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(warm_up, range(workers)))  # imports done, as in a running worker
            started = time.perf_counter()
            results = list(pool.map(shard_memory, shards, [blob] * count, [horizon] * count))
    else:
        results = [shard_memory(shard, blob, horizon) for shard in shards]
    wall = time.perf_counter() - started
    busy = sum(r[0] for r in results)
    busy_cpu = sum(r[1] for r in results)
    total = sum(r[2] for r in results)
    rows = sum(r[3] for r in results)
    # A worker's peak (its own process when spawned; the whole bench otherwise).
    rss = max(r[4] for r in results)
    print(
        f"customer_memory  {wall:6.2f} s  (CPU {busy_cpu:5.2f} s)  {total / wall:12,.0f} events/s  "
        f"({count} shards on {workers} worker(s), {busy:.2f} s busy, slowest shard "
        f"{max(r[0] for r in results):.2f} s, {rows:,} rows)  peak RSS {rss:,.0f} MB"
    )
    print(f"engine total     {fitted + wall:6.2f} s  (CPU {fitted_cpu + busy_cpu:5.2f} s)")


def main() -> None:
    """Run the benchmark from the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=[*SIZES, "all"], default="all")
    parser.add_argument("--workers", type=int, default=1, help="shard worker processes")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for name in SIZES if arguments.size == "all" else [arguments.size]:
        run(name, arguments.workers, arguments.seed)


if __name__ == "__main__":
    main()
