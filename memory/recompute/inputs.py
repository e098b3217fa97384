"""The engine's inputs for some customers: events, traits and the catalogue, densely indexed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from django.db.models import F

from campaigns.models import Workspace
from memory.db.reads import Catalogue, CustomerFilter, catalogue_of, events_frame, traits_frame
from memory.models import Customer

# The population is fitted on at most about this many customers (whole buckets of them).
POPULATION_CUSTOMERS = 50_000
# An incremental run refreshes the population too, on a smaller sample: it must stay quick.
POPULATION_CUSTOMERS_INCREMENTAL = 5_000
# A population sample up to this size is read by customer ids (see population_filter).
SAMPLE_BY_IDS_MAX = 10_000


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

        The events are split in one pass, not filtered once per bucket (a cost of seconds at
        10M events; docs/decisions/0102-streamed-partition-build.md).
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


def population_sample(*, workspace: Workspace, incremental: bool) -> CustomerFilter:
    """Return the customers a run's population is fitted on (fewer for an incremental run)."""
    customers = POPULATION_CUSTOMERS_INCREMENTAL if incremental else POPULATION_CUSTOMERS
    return population_filter(workspace=workspace, customers=customers)


def population_filter(*, workspace: Workspace, customers: int) -> CustomerFilter:
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
