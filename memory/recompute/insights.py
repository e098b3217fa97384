"""What the insight pages draw from a run, aggregated once from its derived rows at the swap.

Label lift across customer segments (mean lift per label per value of the commonest traits)
and the distribution of per-customer weights per label: a few SQL aggregates over the rows the
run just wrote, stored in the run's stats, so the Associations page reads one row.
"""

from __future__ import annotations

from django.db import connection

from memory.models import Customer, CustomerLabelWeight

# Traits whose values segment customers: at most this many, each with 2 to MAX_VALUES values
# (an id-like trait with a value per customer segments nothing), found on a sample of customers.
MAX_TRAITS = 4
MAX_VALUES = 12
TRAIT_SAMPLE = 20_000
# Weights (posterior means, 0 to 1) are counted in bins this wide; the empty bins at either end
# are dropped.
WEIGHT_BINS = 40

WEIGHTS = CustomerLabelWeight._meta.db_table
CUSTOMERS = Customer._meta.db_table


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _segment_traits(workspace_id: int) -> list[str]:
    """Return the traits most customers have whose values split them into a few segments."""
    each = "jsonb_each_text" if connection.vendor == "postgresql" else "json_each"
    rows = _rows(
        f"""
        SELECT t.key, COUNT(DISTINCT t.value), COUNT(*)
        FROM (SELECT traits FROM {CUSTOMERS} WHERE workspace_id = %s LIMIT {TRAIT_SAMPLE}) c,
             {each}(c.traits) t
        GROUP BY t.key
        """,
        [workspace_id],
    )
    keep = [(key, customers) for key, values, customers in rows if 2 <= values <= MAX_VALUES]
    keep.sort(key=lambda row: (-row[1], row[0]))
    return [key for key, _ in keep[:MAX_TRAITS]]


def _weights_grouped(workspace_id: int, traits: list[str]) -> tuple[list[list], list]:
    """Return ([per trait: (value, label, mean lift, customers)], [(label, bin, customers)]).

    One pass over the weights joined to their customers: on PostgreSQL one query with a
    grouping set per trait and one for the histogram; SQLite, without grouping sets, runs one
    query per set over the same rows.
    """
    postgresql = connection.vendor == "postgresql"
    values, params = [], []
    for index, trait in enumerate(traits):
        if postgresql:
            values.append(f"c.traits ->> %s AS s{index}")
            params.append(trait)
        else:
            values.append(f"json_extract(c.traits, %s) AS s{index}")
            params.append('$."' + trait.replace('"', "") + '"')
    bin_expr = (
        f"LEAST(FLOOR(w.weight * {WEIGHT_BINS})::int, {WEIGHT_BINS - 1})"
        if postgresql
        else f"MIN(CAST(w.weight * {WEIGHT_BINS} AS INTEGER), {WEIGHT_BINS - 1})"
    )
    rows_sql = f"""
        SELECT w.label_id, w.lift, {bin_expr} AS bin{"".join(", " + v for v in values)}
        FROM {WEIGHTS} w JOIN {CUSTOMERS} c ON c.id = w.customer_id
        WHERE w.workspace_id = %s
    """
    params.append(workspace_id)
    sets = [f"s{index}" for index in range(len(traits))] + ["bin"]
    by_trait: list[list] = [[] for _ in traits]
    histogram: list = []
    if postgresql:
        flags = ", ".join(sets)
        columns = ", ".join(sets)
        grouped = _rows(
            f"""
            SELECT GROUPING({flags}), label_id, {columns}, AVG(lift), COUNT(*)
            FROM ({rows_sql}) x
            GROUP BY GROUPING SETS ({", ".join(f"(label_id, {s})" for s in sets)})
            """,
            params,
        )
        everything = (1 << len(sets)) - 1
        for flag, label_id, *keys, lift, count in grouped:
            index = next(
                i for i in range(len(sets)) if everything ^ flag == 1 << (len(sets) - 1 - i)
            )
            if index == len(traits):
                histogram.append((label_id, keys[index], count))
            elif keys[index] is not None:
                by_trait[index].append((str(keys[index]), label_id, lift, count))
        return by_trait, histogram
    for index, column in enumerate(sets):
        grouped = _rows(
            f"SELECT label_id, {column}, AVG(lift), COUNT(*) FROM ({rows_sql}) x"
            f" GROUP BY label_id, {column}",
            params,
        )
        for label_id, key, lift, count in grouped:
            if index == len(traits):
                histogram.append((label_id, key, count))
            elif key is not None:
                by_trait[index].append((str(key), label_id, lift, count))
    return by_trait, histogram


def _segments(traits: list[str], by_trait: list[list]) -> dict:
    """Return {trait: {values, customers, label_ids, lift}}: mean lift per label per value."""
    result = {}
    for trait, rows in zip(traits, by_trait, strict=True):
        customers: dict[str, int] = {}
        for segment, _, _, count in rows:
            customers[segment] = max(customers.get(segment, 0), int(count))
        values = sorted(customers, key=lambda v: (-customers[v], v))[:MAX_VALUES]
        label_ids = sorted({int(label_id) for _, label_id, _, _ in rows})
        cells = {(segment, int(label)): float(lift) for segment, label, lift, _ in rows}
        result[trait] = {
            "values": values,
            "customers": [customers[v] for v in values],
            "label_ids": label_ids,
            "lift": [[cells.get((v, label)) for label in label_ids] for v in values],
        }
    return result


def _histograms(rows: list) -> dict:
    """Return {low, high, label_ids, counts}: customers per weight bin of [low, high), per label,
    the empty bins at either end left out."""
    if not rows:
        return {"low": 0.0, "high": 0.0, "label_ids": [], "counts": []}
    used = [int(b) for _, b, _ in rows]
    first, last = max(0, min(used)), min(WEIGHT_BINS - 1, max(used))
    label_ids = sorted({int(label_id) for label_id, _, _ in rows})
    counts = {label_id: [0] * (last - first + 1) for label_id in label_ids}
    for label_id, bin_index, count in rows:
        counts[int(label_id)][min(max(int(bin_index), first), last) - first] += int(count)
    return {
        "low": first / WEIGHT_BINS,
        "high": (last + 1) / WEIGHT_BINS,
        "label_ids": label_ids,
        "counts": [counts[i] for i in label_ids],
    }


def insight_stats(*, workspace_id: int) -> dict:
    """Return the Associations page's aggregates of the workspace's current derived rows."""
    traits = _segment_traits(workspace_id)
    by_trait, histogram = _weights_grouped(workspace_id, traits)
    without_traits = Customer.objects.all_workspaces().filter(workspace_id=workspace_id, traits={})
    return {
        "customers_without_traits": without_traits.count(),
        "segment_lift": _segments(traits, by_trait),
        "weight_histograms": _histograms(histogram),
    }
