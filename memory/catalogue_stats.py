"""What the last recompute says about each label, for the taxonomy page and API (read-only).

Reads only what a run stored: everyone's rate and lift per label from the run's stats
(`label_priors`), and how many customers favour each label (it is their top-weighted label in
its set) from CustomerLabelWeight. Never runs the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection

from campaigns.models import Label, Workspace
from memory.models import CustomerLabelWeight, RecomputeRun

# Counting favourites scans the workspace's weights partition once; only a run rewrites those
# rows, so the count is cached per run (as the memory page's headline counts are).
FAVOURITES_CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class LabelStats:
    """Everyone's goal rate after a send carrying the label, its lift, sends, and favourites."""

    rate: float | None
    lift: float | None
    sends: float
    favoured_by: int


@dataclass(frozen=True)
class CatalogueStats:
    """The last successful run's numbers per label id, and when that run was."""

    run_id: int | None
    as_of: object
    by_label: dict[int, LabelStats]

    def of(self, label_id: int) -> LabelStats:
        return self.by_label.get(label_id, LabelStats(None, None, 0.0, 0))


def _favourites(workspace: Workspace) -> dict[int, int]:
    """Return {label id: customers whose top weight in the label's set is that label}."""
    table, labels = CustomerLabelWeight._meta.db_table, Label._meta.db_table
    # DISTINCT ON keeps each customer's highest-weighted label per set (ties: lowest label id).
    sql = f"""
        SELECT top.label_id, COUNT(*)
        FROM (
            SELECT DISTINCT ON (w.customer_id, l.label_set_id) w.label_id
            FROM "{table}" w
            JOIN "{labels}" l ON l.id = w.label_id
            WHERE w.workspace_id = %s
            ORDER BY w.customer_id, l.label_set_id, w.weight DESC, w.label_id
        ) top
        GROUP BY top.label_id
    """
    if connection.vendor != "postgresql":
        # SQLite has no DISTINCT ON: number each customer's labels per set and keep the first.
        sql = f"""
            SELECT ranked.label_id, COUNT(*)
            FROM (
                SELECT w.label_id, ROW_NUMBER() OVER (
                    PARTITION BY w.customer_id, l.label_set_id
                    ORDER BY w.weight DESC, w.label_id
                ) AS place
                FROM "{table}" w
                JOIN "{labels}" l ON l.id = w.label_id
                WHERE w.workspace_id = %s
            ) ranked
            WHERE ranked.place = 1
            GROUP BY ranked.label_id
        """
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk])
        return {int(label_id): int(count) for label_id, count in cursor.fetchall()}


def catalogue_stats(*, workspace: Workspace) -> CatalogueStats:
    """Return the last successful run's rate, lift, sends and favourites for every label."""
    run = (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status=RecomputeRun.Status.SUCCEEDED)
        .only("pk", "as_of", "finished_at", "stats")
        .order_by("-created_at")
        .first()
    )
    if run is None:
        favourites = _favourites(workspace)
        priors = []
    else:
        finished = run.finished_at.timestamp() if run.finished_at else 0
        key = f"primer:label-favourites:{workspace.pk}:{run.pk}:{finished}"
        favourites = cache.get_or_set(key, lambda: _favourites(workspace), FAVOURITES_CACHE_SECONDS)
        priors = (run.stats or {}).get("label_priors") or []
    by_slug = {(row.get("label_set"), row.get("label")): row for row in priors}
    labels = Label.objects.for_workspace(workspace).values_list("pk", "label_set__slug", "slug")
    by_label = {}
    for pk, set_slug, slug in labels:
        prior = by_slug.get((set_slug, slug)) or {}
        by_label[pk] = LabelStats(
            rate=prior.get("pooled_rate"),
            lift=prior.get("population_lift"),
            sends=float(prior.get("population_exposures") or 0.0),
            favoured_by=favourites.get(pk, 0),
        )
    return CatalogueStats(
        run_id=run.pk if run else None, as_of=run.as_of if run else None, by_label=by_label
    )
