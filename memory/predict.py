"""Score candidate messages and rank next-best messages with the memory, as of a time.

A stored run's population statistics (or ones fitted now, for an arbitrary as-of time) and
only the named customers' own events: the same split the sharded recompute uses.
"""

import math
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from campaigns.models import Label, Message, Workspace
from memory.db.reads import (
    Catalogue,
    CustomerFilter,
    hours_since_epoch,
    trait_keys_of,
    traits_frame,
)
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


@dataclass
class CustomerInputs:
    """Hold the named customers' engine inputs and where each one sits in them."""

    events: pl.DataFrame
    traits: pl.DataFrame | None  # dense customer and trait columns (no database id)
    catalogue: Catalogue
    dense: dict[str, int]  # external id -> dense index, cold-start customers included
    cold_start: set[str]  # no event before as-of: scored from the population and their segment


def _customer_inputs(
    *, workspace: Workspace, fitted: PopulationAt, external_ids: list[str]
) -> CustomerInputs:
    """Read the named customers' events and traits, each with a dense index.

    A customer without events before as-of (known only by traits, or not at all) gets an index
    past everyone with events, and their traits if any, so the engine scores them from the
    population and their trait segment instead of refusing them.
    """
    found = dict(
        Customer.objects.for_workspace(workspace)
        .filter(external_id__in=set(external_ids))
        .values_list("external_id", "pk")
    )
    inputs: EngineInputs = engine_inputs(
        workspace=workspace,
        as_of=fitted.as_of,
        customers=CustomerFilter(customer_ids=tuple(sorted(found.values()))),
        trait_keys=fitted.trait_keys,
    )
    dense_of_id = {int(cid): i for i, cid in enumerate(inputs.customer_ids.to_list())}
    dense = {ext: dense_of_id[pk] for ext, pk in found.items() if pk in dense_of_id}
    cold = sorted(set(external_ids) - set(dense))
    dense |= {ext: inputs.customer_ids.len() + i for i, ext in enumerate(cold)}
    traits = inputs.engine_traits
    known_cold = {found[ext]: dense[ext] for ext in cold if ext in found}
    if known_cold and fitted.trait_keys:
        cold_traits = traits_frame(
            workspace=workspace,
            keys=fitted.trait_keys,
            customers=CustomerFilter(customer_ids=tuple(sorted(known_cold))),
        )
        cold_traits = cold_traits.select(
            pl.col("customer_id")
            .replace_strict(known_cold, return_dtype=pl.Int64)
            .alias("customer"),
            *[
                pl.col(key).cast(traits.schema[key], strict=False) if traits is not None else key
                for key in fitted.trait_keys
            ],
        )
        traits = (
            cold_traits
            if traits is None
            else pl.concat([traits, cold_traits.select(traits.columns)])
        )
    return CustomerInputs(inputs.events, traits, inputs.catalogue, dense, set(cold))


def memory_score(
    *, workspace: Workspace, pairs: pl.DataFrame, as_of: datetime | None = None
) -> pl.DataFrame:
    """Score (customer_id, message_key) pairs: p_goal and each memory's contribution.

    Unknown messages get a null p_goal and a `problem`; a customer without events before as-of
    is scored from the population and their trait segment, with `cold_start` true.
    """
    fitted = population_at(workspace=workspace, as_of=as_of)
    inputs = _customer_inputs(
        workspace=workspace, fitted=fitted, external_ids=pairs["customer_id"].unique().to_list()
    )
    keyed = pairs.with_row_index("row").join(
        inputs.catalogue.messages.select(pl.col("key").alias("message_key"), "message"),
        on="message_key",
        how="left",
    )
    keyed = keyed.with_columns(
        pl.col("customer_id")
        .replace_strict(inputs.dense, default=None, return_dtype=pl.Int64)
        .alias("customer"),
        pl.col("customer_id").is_in(list(inputs.cold_start)).alias("cold_start"),
    )
    known = keyed.filter(pl.col("customer").is_not_null() & pl.col("message").is_not_null())
    scored = sharded.score_with_population(
        events=inputs.events,
        population=fitted.population,
        horizon=hours_since_epoch(fitted.as_of),
        candidates=known.select("customer", "message"),
        traits=inputs.traits,
    )
    scored = pl.concat([known.select("row"), scored.drop("customer", "message")], how="horizontal")
    problem = pl.when(pl.col("message").is_null()).then(pl.lit("unknown message"))
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
    only: set[int] | None = None,
) -> pl.DataFrame:
    """Rank the workspace's active messages for one customer, honouring label boosts.

    `only` (message ids) ranks just those: what guardrails and overrides allow, so that
    exploration never draws a message they exclude (memory/strategy.py).
    """
    fitted = population_at(workspace=workspace, as_of=as_of)
    inputs = _customer_inputs(workspace=workspace, fitted=fitted, external_ids=[external_id])
    active_ids = set(
        Message.objects.for_workspace(workspace).filter(active=True).values_list("pk", flat=True)
    )
    if only is not None:
        active_ids &= only
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
        customer=inputs.dense[external_id],
        boosts=boosts,
        explore=explore,
        seed=seed,
        messages=messages["message"].to_list(),
        traits=inputs.traits,
    )
    # Without events before as-of, the ranking is the population's and their segment's.
    return ranked.head(limit).with_columns(
        pl.lit(external_id in inputs.cold_start).alias("cold_start")
    )


# What sets one message apart from another for the same customer: the features that vary by
# message (the customer's own baseline, recency and priming lift every message alike).
WHY_GROUPS: dict[str, tuple[str, ...]] = {
    "pull": FEATURE_GROUPS["message"] + FEATURE_GROUPS["interaction"],
    "labels": FEATURE_GROUPS["associative"],
    "wear_out": FEATURE_GROUPS["habituation"],
}


def ranking_reasons(ranked: pl.DataFrame | list[dict]) -> list[dict]:
    """Return the ranking's rows with, per reason in WHY_GROUPS, the odds multiplier its features
    give the message (exp of their summed contributions; 1 where the model lacks them)."""
    rows = []
    for row in ranked if isinstance(ranked, list) else ranked.to_dicts():
        for reason, features in WHY_GROUPS.items():
            logit = sum(row.get(f"contribution_{name}") or 0.0 for name in features)
            row[reason] = math.exp(logit)
        rows.append(row)
    return rows
