"""Memory as it stood at past moments, computed in process and never stored.

The preference export (campaigns/prompts/preferences.py) needs each customer's memory as of
just before a send it pairs: these snapshots run the same steps as a recompute (population fit,
scoring model, each customer's pass) on the events strictly before each moment, and hand back
the derived rows keyed by database ids, as a recompute would write them
(docs/decisions/0400-preference-snapshots-and-pairs.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from campaigns.models import Workspace
from memory.db import writeback
from memory.db.reads import CustomerFilter, hours_since_epoch, trait_keys_of
from memory.recompute.inputs import EngineInputs, engine_inputs
from memory.recompute.plan import engine_config
from memory.scoring import sharded
from memory.scoring.frames import normalise_events
from memory.scoring.outcomes import send_outcomes


@dataclass
class Snapshot:
    """One moment's memory: derived rows by database id, the population's rate, the events."""

    as_of: datetime
    frames: dict[str, pl.DataFrame]  # weights, habituation, state (as the derived tables)
    pooled_rate_h: float | None
    # customer_id, name, t (hours since the epoch), message_id: every event before as_of.
    events: pl.DataFrame
    seconds: float
    stats: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Return what a dataset card says about this snapshot."""
        return {
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "events_before": self.events.height,
            "customers_with_memory": self.frames["state"].height,
            "population_goal_rate_per_h": self.pooled_rate_h,
            "seconds": round(self.seconds, 1),
        }


def workspace_events(*, workspace: Workspace) -> EngineInputs:
    """Return every event of the workspace (and traits, catalogue) in the engine's frames."""
    return engine_inputs(
        workspace=workspace,
        as_of=None,
        customers=CustomerFilter(),
        trait_keys=trait_keys_of(workspace=workspace),
    )


def datetime_of_hours(hours: float) -> datetime:
    """Return the aware UTC datetime of an engine clock reading."""
    return datetime.fromtimestamp(hours * 3600.0, tz=UTC)


def memory_snapshots(
    *,
    workspace: Workspace,
    inputs: EngineInputs,
    moments: list[datetime],
    on_snapshot: Callable[[int, int], None] | None = None,
) -> Iterator[Snapshot]:
    """Yield the memory as of each moment (oldest first), from the events strictly before it.

    Each snapshot fits its own population and scoring model, as a full recompute at that
    moment would; nothing after the moment is read. One snapshot is held at a time.
    """
    config = engine_config(workspace)
    ordered = sorted(set(moments))
    for index, moment in enumerate(ordered):
        started = time.perf_counter()
        horizon = hours_since_epoch(moment)
        before = inputs.events.filter(pl.col("t") < horizon)
        population = (
            sharded.fit_statistics(
                events=before,
                messages=inputs.catalogue.messages,
                message_labels=inputs.catalogue.message_labels,
                config=config,
                horizon=horizon,
                traits=inputs.engine_traits,
            )
            .finish()
            .population
        )
        derived = sharded.customer_memory(
            events=before, population=population, horizon=horizon, traits=inputs.engine_traits
        )
        frames = writeback.to_database_ids(
            derived, customer_ids=inputs.customer_ids, catalogue=inputs.catalogue
        )
        yield Snapshot(
            as_of=moment,
            frames=frames,
            pooled_rate_h=population.baseline.pooled_rate_h,
            events=before.select("customer_id", "name", "t", "message_id"),
            seconds=time.perf_counter() - started,
            stats=population.summary(),
        )
        if on_snapshot:
            on_snapshot(index + 1, len(ordered))


def send_outcomes_of(*, workspace: Workspace, inputs: EngineInputs) -> pl.DataFrame:
    """Return every send with its outcome, by database ids, as the engine credits the goal.

    Columns: customer_id, message_id, t, resolved (its window closed before the last event),
    goal (1/0, null while unresolved).
    """
    events = normalise_events(inputs.events)
    horizon = math.nextafter(float(events["t"].max()), math.inf) if events.height else 0.0
    outcomes = send_outcomes(events, engine_config(workspace), horizon)
    customers = pl.DataFrame(
        {
            "customer": pl.int_range(0, inputs.customer_ids.len(), eager=True, dtype=pl.Int64),
            "customer_id": inputs.customer_ids,
        }
    )
    messages = inputs.catalogue.messages.select(
        pl.col("message").cast(pl.Int64), pl.col("message_id").cast(pl.Int64)
    )
    return (
        outcomes.join(customers, on="customer")
        .join(messages, on="message", how="left")
        .select("customer_id", "message_id", "t", "resolved", "goal")
    )
