"""Score candidate messages and rank next-best messages with the memory, as of a time.

A stored run's population statistics (or ones fitted now, for an arbitrary as-of time) and
only the named customers' own events: the same split the sharded recompute uses.
"""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import polars as pl

from campaigns.models import Label, Message, Workspace
from memory.db.reads import CustomerFilter, hours_since_epoch, trait_keys_of
from memory.models import Customer, RecomputeRun
from memory.recompute.inputs import EngineInputs, engine_inputs, population_sample
from memory.recompute.plan import default_as_of, engine_config
from memory.scoring import sharded
from memory.scoring.model import FEATURE_GROUPS


class NoMemoryYet(LookupError):
    """The workspace has no successful recompute to score with."""


@dataclass
class PopulationAt:
    population: sharded.Population
    as_of: datetime
    trait_keys: list[str]


def population_at(*, workspace: Workspace, as_of: datetime | None) -> PopulationAt:
    """Return the latest run's population (as_of None), or fit one from events before as_of."""
    if as_of is None:
        run = (
            RecomputeRun.objects.for_workspace(workspace)
            .filter(status=RecomputeRun.Status.SUCCEEDED, population__isnull=False)
            .order_by("-finished_at")
            .first()
        )
        if run is None:
            raise NoMemoryYet(f"Workspace {workspace.slug!r} has no recompute yet.")
        return PopulationAt(
            population=sharded.Population.from_bytes(bytes(run.population)),
            as_of=max(run.as_of, default_as_of(workspace=workspace)),
            trait_keys=run.stats.get("trait_keys", []),
        )
    trait_keys = trait_keys_of(workspace=workspace)
    inputs = engine_inputs(
        workspace=workspace,
        as_of=as_of,
        customers=population_sample(workspace=workspace, incremental=False),
        trait_keys=trait_keys,
    )
    population = sharded.fit_population(
        events=inputs.events,
        messages=inputs.catalogue.messages,
        message_labels=inputs.catalogue.message_labels,
        config=engine_config(workspace),
        horizon=hours_since_epoch(as_of),
        traits=inputs.engine_traits,
    )
    return PopulationAt(population=population, as_of=as_of, trait_keys=trait_keys)


class CustomerInputs(NamedTuple):
    """Named customers' engine inputs, and each external id's dense index in them."""

    inputs: EngineInputs
    dense: dict[str, int]


def _customer_inputs(
    *, workspace: Workspace, fitted: PopulationAt, external_ids: list[str]
) -> CustomerInputs:
    """Read the named customers' events; return the inputs and external id -> dense index."""
    found = dict(
        Customer.objects.for_workspace(workspace)
        .filter(external_id__in=set(external_ids))
        .values_list("external_id", "pk")
    )
    inputs = engine_inputs(
        workspace=workspace,
        as_of=fitted.as_of,
        customers=CustomerFilter(customer_ids=tuple(sorted(found.values()))),
        trait_keys=fitted.trait_keys,
    )
    dense_of_id = {int(cid): i for i, cid in enumerate(inputs.customer_ids.to_list())}
    dense = {ext: dense_of_id[pk] for ext, pk in found.items() if pk in dense_of_id}
    return CustomerInputs(inputs, dense)


def memory_score(
    *, workspace: Workspace, pairs: pl.DataFrame, as_of: datetime | None = None
) -> pl.DataFrame:
    """Score (customer_id, message_key) pairs: p_goal and each memory's contribution.

    Unknown customers or messages get a null p_goal and a `problem` saying which.
    """
    fitted = population_at(workspace=workspace, as_of=as_of)
    inputs, dense = _customer_inputs(
        workspace=workspace, fitted=fitted, external_ids=pairs["customer_id"].unique().to_list()
    )
    keyed = pairs.with_row_index("row").join(
        inputs.catalogue.messages.select(pl.col("key").alias("message_key"), "message"),
        on="message_key",
        how="left",
    )
    keyed = keyed.with_columns(
        pl.col("customer_id")
        .replace_strict(dense, default=None, return_dtype=pl.Int64)
        .alias("customer")
    )
    known = keyed.filter(pl.col("customer").is_not_null() & pl.col("message").is_not_null())
    scored = sharded.score_with_population(
        events=inputs.events,
        population=fitted.population,
        horizon=hours_since_epoch(fitted.as_of),
        candidates=known.select("customer", "message"),
        traits=inputs.engine_traits,
    )
    scored = pl.concat([known.select("row"), scored.drop("customer", "message")], how="horizontal")
    problem = (
        pl.when(pl.col("customer").is_null())
        .then(pl.lit("unknown customer"))
        .when(pl.col("message").is_null())
        .then(pl.lit("unknown message"))
    )
    return (
        keyed.with_columns(problem.alias("problem"))
        .join(scored, on="row", how="left")
        .sort("row")
        .drop("row", "customer", "message")
    )


def memory_next_best(
    *,
    workspace: Workspace,
    external_id: str,
    explore: bool = False,
    seed: int = 0,
    as_of: datetime | None = None,
    limit: int = 10,
) -> pl.DataFrame:
    """Rank the workspace's active messages for one customer, honouring label boosts."""
    fitted = population_at(workspace=workspace, as_of=as_of)
    inputs, dense = _customer_inputs(workspace=workspace, fitted=fitted, external_ids=[external_id])
    if external_id not in dense:
        raise Customer.DoesNotExist(f"No customer {external_id!r} with events before as-of.")
    active_ids = set(
        Message.objects.for_workspace(workspace).filter(active=True).values_list("pk", flat=True)
    )
    messages = inputs.catalogue.messages.filter(pl.col("message_id").is_in(active_ids))
    boosts = pl.DataFrame(
        list(
            Label.objects.for_workspace(workspace)
            .filter(active=True)
            .values_list("label_set__slug", "slug", "boost")
        ),
        schema={"label_set": pl.Utf8, "label": pl.Utf8, "boost": pl.Float64},
        orient="row",
    )
    ranked = sharded.rank_with_population(
        events=inputs.events,
        population=fitted.population,
        horizon=hours_since_epoch(fitted.as_of),
        customer=dense[external_id],
        boosts=boosts,
        explore=explore,
        seed=seed,
        messages=messages["message"].to_list(),
        traits=inputs.engine_traits,
    )
    return ranked.head(limit)


# What sets one message apart from another for the same customer: the features that vary by
# message (the customer's own baseline, recency and priming lift every message alike).
WHY_GROUPS: dict[str, tuple[str, ...]] = {
    "pull": FEATURE_GROUPS["message"] + FEATURE_GROUPS["interaction"],
    "labels": FEATURE_GROUPS["associative"],
    "wear_out": FEATURE_GROUPS["habituation"],
}


def ranking_reasons(ranked: pl.DataFrame) -> list[dict]:
    """Return the ranking's rows with, per reason in WHY_GROUPS, the odds multiplier its features
    give the message (exp of their summed contributions; 1 where the model lacks them)."""
    rows = []
    for row in ranked.to_dicts():
        for reason, features in WHY_GROUPS.items():
            logit = sum(row.get(f"contribution_{name}") or 0.0 for name in features)
            row[reason] = math.exp(logit)
        rows.append(row)
    return rows
