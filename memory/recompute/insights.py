"""What the insight pages draw from a run, aggregated once from its derived rows at the swap.

Label lift across customer segments (mean lift per label per value of the commonest traits)
and the distribution of per-customer weights per label: a few SQL aggregates over the rows the
run just wrote, stored in the run's stats, so the Associations page reads one row.
"""

from __future__ import annotations

from django.db import connection

from memory.models import Customer, CustomerLabelWeight

# Traits whose values segment customers: at most this many, each with 2 to MAX_VALUES values
# (an id-like trait with a value per customer segments nothing).
MAX_TRAITS = 4
MAX_VALUES = 12
WEIGHT_BINS = 20

WEIGHTS = CustomerLabelWeight._meta.db_table
CUSTOMERS = Customer._meta.db_table


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _segment_traits(workspace_id: int) -> list[str]:
    """Return the traits most customers have whose values split them into a few segments."""
    if connection.vendor == "postgresql":
        sql = f"""
            SELECT t.key, COUNT(DISTINCT t.value), COUNT(*)
            FROM {CUSTOMERS} c, jsonb_each_text(c.traits) t
            WHERE c.workspace_id = %s AND jsonb_typeof(c.traits) = 'object'
            GROUP BY t.key
        """
    else:
        sql = f"""
            SELECT t.key, COUNT(DISTINCT t.value), COUNT(*)
            FROM {CUSTOMERS} c, json_each(c.traits) t
            WHERE c.workspace_id = %s AND json_type(c.traits) = 'object'
            GROUP BY t.key
        """
    rows = _rows(sql, [workspace_id])
    keep = [(key, customers) for key, values, customers in rows if 2 <= values <= MAX_VALUES]
    keep.sort(key=lambda row: (-row[1], row[0]))
    return [key for key, _ in keep[:MAX_TRAITS]]


def segment_lift(workspace_id: int) -> dict:
    """Return {trait: {values, customers, label_ids, lift}}: mean lift per label per value."""
    traits = _segment_traits(workspace_id)
    result = {}
    for trait in traits:
        if connection.vendor == "postgresql":
            value, params = "c.traits ->> %s", [trait]
        else:
            value, params = "json_extract(c.traits, %s)", ['$."' + trait.replace('"', "") + '"']
        rows = _rows(
            f"""
            SELECT {value} AS segment, w.label_id, AVG(w.lift), COUNT(*)
            FROM {WEIGHTS} w JOIN {CUSTOMERS} c ON c.id = w.customer_id
            WHERE w.workspace_id = %s
            GROUP BY segment, w.label_id
            """,
            [*params, workspace_id],
        )
        rows = [row for row in rows if row[0] is not None]
        customers: dict[str, int] = {}
        for segment, _, _, count in rows:
            customers[str(segment)] = max(customers.get(str(segment), 0), int(count))
        values = sorted(customers, key=lambda v: (-customers[v], v))[:MAX_VALUES]
        label_ids = sorted({int(label_id) for _, label_id, _, _ in rows})
        cells = {(str(s), int(label)): float(lift) for s, label, lift, _ in rows}
        result[trait] = {
            "values": values,
            "customers": [customers[v] for v in values],
            "label_ids": label_ids,
            "lift": [[cells.get((v, label)) for label in label_ids] for v in values],
        }
    return result


def weight_histograms(workspace_id: int) -> dict:
    """Return {top, label_ids, counts}: customers per weight bin of [0, top], per label."""
    top = _rows(f"SELECT MAX(weight) FROM {WEIGHTS} WHERE workspace_id = %s", [workspace_id])[0][0]
    if not top:
        return {"top": 0.0, "label_ids": [], "counts": []}
    scaled = f"w.weight * {WEIGHT_BINS} / %s"
    bin_expr = (
        f"LEAST(FLOOR({scaled})::int, {WEIGHT_BINS - 1})"
        if connection.vendor == "postgresql"
        else f"MIN(CAST({scaled} AS INTEGER), {WEIGHT_BINS - 1})"
    )
    rows = _rows(
        f"""
        SELECT w.label_id, {bin_expr} AS bin, COUNT(*)
        FROM {WEIGHTS} w WHERE w.workspace_id = %s
        GROUP BY w.label_id, bin
        """,
        [float(top), workspace_id],
    )
    label_ids = sorted({int(label_id) for label_id, _, _ in rows})
    counts = {label_id: [0] * WEIGHT_BINS for label_id in label_ids}
    for label_id, bin_index, count in rows:
        counts[int(label_id)][max(0, int(bin_index))] += int(count)
    return {"top": float(top), "label_ids": label_ids, "counts": [counts[i] for i in label_ids]}


def insight_stats(*, workspace_id: int) -> dict:
    """Return the Associations page's aggregates of the workspace's current derived rows."""
    without_traits = Customer.objects.all_workspaces().filter(workspace_id=workspace_id, traits={})
    return {
        "customers_without_traits": without_traits.count(),
        "segment_lift": segment_lift(workspace_id),
        "weight_histograms": weight_histograms(workspace_id),
    }
