"""Read on a second connection while this one fits: PostgreSQL and the fit share two cores.

Same inputs and population either way: the engine does not depend on the order of the event
rows, nor the population on when its steps run (see docs/decisions/0101-overlap-read-and-fit.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import NamedTuple

import polars as pl
from django.db import connection

from memory.db.reads import CustomerFilter, catalogue_of, events_frame, traits_frame
from memory.recompute.inputs import EngineInputs, engine_inputs, population_sample
from memory.recompute.plan import RecomputePlan
from memory.recompute.steps import (
    population_fit,
    population_from_sample,
    run_mark_running,
    run_timings_add,
)
from memory.scoring import sharded


class EveryoneFitted(NamedTuple):
    """Every customer's inputs, and the population fit with steps left to take."""

    everyone: EngineInputs
    fit: sharded.PopulationFit


class CustomersFitted(NamedTuple):
    """Some customers' inputs (None where a shard reads them itself), and the population."""

    customers: EngineInputs | None
    population: sharded.Population


def everyone_read_and_fit(*, plan: RecomputePlan) -> EveryoneFitted:
    """Read every customer's inputs and fit the population statistics on the run's sample.

    The fit's other steps (curve, replayed slices, model) are left for the caller to take
    while it waits on something else. On PostgreSQL, outside a transaction, the sample is
    read first and fitted while a second connection reads everyone else; if that read is
    still going once the statistics are fitted, the fit's other steps fill the wait.
    """
    workspace, keys = plan.workspace, plan.trait_keys
    sample = population_sample(workspace=workspace, incremental=False)
    started = time.perf_counter()
    if not sample.shards or not _second_connection_sees_events():
        everyone = engine_inputs(
            workspace=workspace, as_of=plan.as_of, customers=CustomerFilter(), trait_keys=keys
        )
        run_timings_add(plan=plan, read_s=time.perf_counter() - started)
        return EveryoneFitted(everyone, _fit_started(plan, everyone.subset(sample)))
    # Everyone's traits in one read, so each trait column gets the type it always had.
    traits = traits_frame(workspace=workspace, keys=keys) if keys else None
    catalogue = catalogue_of(workspace=workspace)
    events = events_frame(workspace=workspace, before=plan.as_of, customers=sample)
    sampled = traits.filter(sample.expr("customer_id")) if traits is not None else None
    run_timings_add(plan=plan, read_s=time.perf_counter() - started)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Not before: two reads at once would only share the cores the fit needs after them.
        others = pool.submit(
            _on_own_connection(events_frame),
            workspace=workspace,
            before=plan.as_of,
            customers=replace(sample, other_shards=True),
        )
        fit = _fit_started(plan, EngineInputs.indexed(events, sampled, catalogue))
        while not others.done() and fit.step():
            pass
        waited = time.perf_counter()
        rest = others.result()
    run_timings_add(plan=plan, read_wait_s=time.perf_counter() - waited)
    everyone = EngineInputs.indexed(pl.concat([events, rest]), traits, catalogue)
    return EveryoneFitted(everyone, fit)


def customers_read_while_fitting(*, plan: RecomputePlan) -> CustomersFitted:
    """Fit and store the population of a run for some customers while another connection
    reads theirs; where it cannot see the events (SQLite, a transaction), they are not read."""
    if not _second_connection_sees_events():
        return CustomersFitted(None, population_from_sample(plan=plan))
    with ThreadPoolExecutor(max_workers=1) as pool:
        theirs = pool.submit(
            _on_own_connection(engine_inputs),
            workspace=plan.workspace,
            as_of=plan.as_of,
            customers=plan.bucket(0),
            trait_keys=plan.trait_keys,
        )
        population = population_from_sample(plan=plan)
        return CustomersFitted(theirs.result(), population)


def _fit_started(plan: RecomputePlan, sample: EngineInputs) -> sharded.PopulationFit:
    run_mark_running(plan=plan)
    return population_fit(plan=plan, inputs=sample)


def _second_connection_sees_events() -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _on_own_connection(read: Callable) -> Callable:
    """Wrap a read for another thread: it gets a connection of its own, closed after."""

    def read_and_close(**kwargs):
        try:
            return read(**kwargs)
        finally:
            connection.close()

    return read_and_close
