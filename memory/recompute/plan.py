"""What a recompute run computes: its mode, as-of time, customers and shards."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from campaigns.models import Workspace
from memory.db.reads import CustomerFilter, hours_since_epoch, trait_keys_of
from memory.models import Customer, Event, RecomputeRun
from memory.scoring import sharded
from memory.scoring.frames import EngineConfig
from memory.scoring.model import ScoringModel

# At most this many tasks per run: each costs overhead and a catalogue read (decision 0103).
MAX_SHARDS = 1000
# Past this many changed customers an incremental run is a full one: it would cost about the
# same, and an id list this long would pass the databases' limits on query parameters.
INCREMENTAL_MAX_CUSTOMERS = 20_000
# An incremental run keeps the scoring model of a run at most this much older (see
# reusable_model); the nightly full run refits it.
MODEL_REUSE_AGE = timedelta(days=7)


@dataclass(frozen=True)
class RecomputePlan:
    """One run's fixed choices: everything its steps need besides the events themselves."""

    run_id: int
    workspace: Workspace
    mode: str
    as_of: datetime
    shards: int
    customer_ids: tuple[int, ...] | None  # None: everyone
    trait_keys: list[str]
    model: ScoringModel | None = None  # an earlier run's model an incremental run keeps

    @classmethod
    def of_run(cls, run: RecomputeRun) -> RecomputePlan:
        """Return the plan a stored run was started with (without a reusable model)."""
        ids = run.stats.get("customer_ids")
        return cls(
            run_id=run.pk,
            workspace=run.workspace,
            mode=run.mode,
            as_of=run.as_of,
            shards=run.shards_total,
            customer_ids=None if ids is None else tuple(ids),
            trait_keys=list(run.stats.get("trait_keys", [])),
        )

    @property
    def incremental(self) -> bool:
        return self.mode == RecomputeRun.Mode.INCREMENTAL

    @property
    def config(self) -> EngineConfig:
        return engine_config(self.workspace)

    @property
    def horizon(self) -> float:
        return hours_since_epoch(self.as_of)

    def bucket(self, index: int) -> CustomerFilter:
        """Return the customers of shard `index`."""
        if self.customer_ids is not None:
            return CustomerFilter(customer_ids=self.customer_ids)
        if self.shards == 1:
            return CustomerFilter()
        return CustomerFilter(shard=index, shards=self.shards)

    def with_reusable_model(self) -> RecomputePlan:
        """Return the plan with the model an incremental run may keep (none for a full run)."""
        return replace(self, model=reusable_model(self)) if self.incremental else self


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


def recompute_start(
    *,
    workspace: Workspace,
    as_of: datetime | None = None,
    customers: list[int] | None = None,
    incremental: bool = False,
    requested_by: str = "",
) -> RecomputePlan:
    """Create a queued run and return its plan: as-of time, customers and shards.

    `incremental`: only customers with new events, if there are few (see
    recompute_incremental_customers); `customers` names them instead.
    """
    if incremental and customers is None:
        customers = recompute_incremental_customers(workspace=workspace)
    count = (
        len(customers)
        if customers is not None
        else Customer.objects.for_workspace(workspace).count()
    )
    stats: dict = {"trait_keys": trait_keys_of(workspace=workspace)}
    if customers is not None:
        stats["customer_ids"] = customers
    if requested_by:
        stats["requested_by"] = requested_by
    run = RecomputeRun.objects.create(
        workspace=workspace,
        mode=RecomputeRun.Mode.INCREMENTAL if customers is not None else RecomputeRun.Mode.FULL,
        as_of=as_of or default_as_of(workspace=workspace),
        shards_total=1 if customers is not None else shard_count(count),
        customers=count,
        stats=stats,
    )
    return RecomputePlan.of_run(run)


def reusable_model(plan: RecomputePlan) -> ScoringModel | None:
    """Return the scoring model of the workspace's last good run, if an incremental run may
    keep it: fitted with the same configuration, on history at most MODEL_REUSE_AGE older."""
    previous = (
        RecomputeRun.objects.for_workspace(plan.workspace)
        .filter(
            status=RecomputeRun.Status.SUCCEEDED,
            population__isnull=False,
            as_of__gte=plan.as_of - MODEL_REUSE_AGE,
            as_of__lte=plan.as_of,
        )
        .order_by("-finished_at")
        .only("population")
        .first()
    )
    if previous is None:
        return None
    population = sharded.Population.from_bytes(bytes(previous.population))
    return population.model if population.config == plan.config else None
