"""A small synthetic workspace in the database, shared by the recompute tests."""

from datetime import UTC, datetime, timedelta

import polars as pl

from memory.importers.synthetic import engine_frames_load
from memory.models import RecomputeRun
from memory.recompute.plan import recompute_start
from memory.recompute.service import recompute_runner
from memory.scoring.synthetic import synthetic_workspace

ORIGIN = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_H = 2_000.0
AS_OF = ORIGIN + timedelta(hours=1_600)


def load_synthetic(workspace, *, customers: int = 240, events: int = 24_000, seed: int = 3):
    """Store a synthetic workspace (default workspace event names) and return its truth."""
    synthetic = synthetic_workspace(customers, events, span_h=SPAN_H, seed=seed)
    traits = pl.DataFrame(
        {
            "customer": list(range(customers)),
            "age": [20 + (i * 7) % 50 for i in range(customers)],
            "plan": ["gold" if i % 3 == 0 else "basic" for i in range(customers)],
        }
    )
    engine_frames_load(
        workspace=workspace,
        events=synthetic.events,
        messages=synthetic.messages,
        message_labels=synthetic.message_labels,
        origin=ORIGIN,
        traits=traits,
    )
    return synthetic


def derived_rows(workspace) -> dict[str, list[tuple]]:
    """Return every derived row of the workspace, keyed by natural keys, for comparisons."""
    from memory.models import (
        CustomerLabelWeight,
        CustomerMessageHabituation,
        CustomerState,
        PrimingIndicator,
    )

    return {
        "weights": sorted(
            CustomerLabelWeight.objects.for_workspace(workspace).values_list(
                "customer__external_id",
                "label__slug",
                "alpha",
                "beta",
                "weight",
                "evidence",
                "lift",
            )
        ),
        "habituation": sorted(
            CustomerMessageHabituation.objects.for_workspace(workspace).values_list(
                "customer__external_id", "message__key", "load", "sends"
            )
        ),
        "state": sorted(
            CustomerState.objects.for_workspace(workspace).values_list(
                "customer__external_id", "primed_score", "baseline_rate"
            )
        ),
        "priming": sorted(
            PrimingIndicator.objects.for_workspace(workspace).values_list(
                "event_name", "lift", "odds_ratio", "support"
            )
        ),
    }


def recompute_here(
    *, workspace, as_of=None, incremental: bool = False, customers: list[int] | None = None
) -> RecomputeRun:
    """Recompute in this process, as the command line does; `customers` names who changed."""
    plan = recompute_start(
        workspace=workspace,
        as_of=as_of,
        customers=customers,
        incremental=incremental,
        requested_by="command",
    )
    return recompute_runner(plan=plan, on_workers=False).run(plan)
