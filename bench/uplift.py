"""Print how long a campaign's uplift takes to read, on a campaign with many served decisions.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/primer_bench .venv/bin/python bench/uplift.py

Builds (once; kept for the next run) a workspace `bench-uplift` with one campaign, --customers
customers and --decisions resolved decisions spread over its three arms, in one INSERT … SELECT
from generate_series; then, in-process, times the uplift page's selector (`campaign_uplift`:
reading the counts and per-customer sums the matching stored) and the matching task's storing
of them (`uplift_counts_store`, `uplift_clusters_store`): median and slowest of --runs after a
warm-up.
To compare two commits, run this same file from each checkout, with the checkout as the working
directory (Celery puts the working directory first on the import path), against one database.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from campaigns.models import Campaign, Message, Workspace  # noqa: E402
from campaigns.tenancy.services import workspace_create  # noqa: E402
from memory.decision_matching import (  # noqa: E402
    uplift_clusters_store,
    uplift_counts_store,
    uplift_store,
)
from memory.decision_selectors import campaign_uplift  # noqa: E402
from memory.models import Customer, Decision  # noqa: E402

SLUG = "bench-uplift"


@transaction.atomic
def build(customers: int, decisions: int) -> Campaign:
    """Return the kept campaign, creating its workspace, customers and decisions if absent."""
    workspace = Workspace.objects.filter(slug=SLUG).first()
    if workspace is not None:
        return Campaign.objects.for_workspace(workspace).get(slug="spring")
    started = time.perf_counter()
    workspace = workspace_create(slug=SLUG, name="Bench uplift")
    offers = [
        Message.objects.create(workspace=workspace, key=f"offer-{i}", subject=f"Offer {i}")
        for i in range(4)
    ]
    campaign = Campaign.objects.create(
        workspace=workspace, slug="spring", name="Spring", holdout_random=0.2, holdout_no_memory=0.1
    )
    campaign.messages.set(offers)
    ids = [o.pk for o in offers]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Customer._meta.db_table}
                (workspace_id, external_id, anonymous_id, traits)
            SELECT %s, 'c' || i, '', '{{}}'::jsonb FROM generate_series(1, %s) AS i""",
            [workspace.pk, customers],
        )
        cursor.execute(
            f"SELECT min(id) FROM {Customer._meta.db_table} WHERE workspace_id = %s",
            [workspace.pk],
        )
        first = cursor.fetchone()[0]
        # Arms 70/20/10; the served offer random, Primer's the first; goals more likely when
        # Primer's was served; a revenue on a third of the goals; every decision resolved.
        cursor.execute(
            f"""INSERT INTO {Decision._meta.db_table}
                (workspace_id, public_id, customer_id, campaign_id, source, arm, policy, eligible,
                 eligible_count, propensities, message_id, propensity, primer_message_id,
                 decided_at, window_h, expires_at, send_event_id, sent_at, matched_by, goal,
                 revenue, resolved_at)
            SELECT %(ws)s, md5(i::text), %(first)s + (i %% %(customers)s), %(campaign)s, 'prompt',
                arm, 'thompson', %(eligible)s::jsonb, 4, '[0.25, 0.25, 0.25, 0.25]'::jsonb,
                served, 0.25, %(primer)s, now() - interval '3 days', 24, now() - interval '2 days',
                i, now() - interval '3 days', 'window', goal,
                CASE WHEN goal AND i %% 3 = 0 THEN 10 + i %% 20 END, now()
            FROM (
                SELECT i,
                    CASE WHEN random() < 0.7 THEN 'primer' WHEN random() < 0.67 THEN 'random'
                         ELSE 'no_memory' END AS arm,
                    (%(ids)s::bigint[])[1 + floor(random() * 4)::int] AS served,
                    random() < 0.3 AS goal
                FROM generate_series(1, %(decisions)s) AS i
            ) AS d""",
            {
                "ws": workspace.pk,
                "first": first,
                "customers": customers,
                "campaign": campaign.pk,
                "eligible": str(ids),
                "primer": ids[0],
                "ids": ids,
                "decisions": decisions,
            },
        )
        cursor.execute(f"ANALYZE {Decision._meta.db_table}")
    print(
        f"built {decisions:,} decisions over {customers:,} customers in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return campaign


def timed(action, runs: int) -> tuple[float, float]:
    action()  # warm-up
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    call_command("migrate", verbosity=0)
    campaign = build(args.customers, args.decisions)
    count = Decision.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign).count()
    workspace, ids = campaign.workspace, {campaign.pk}
    uplift_store(workspace=workspace, campaign_ids=ids)
    median, slowest = timed(lambda: campaign_uplift(campaign=campaign), args.runs)
    print(f"campaign of {count:,} decisions (workspace {SLUG}, kept)")
    print(f"uplift page's selector:        median {median:7.1f} ms, slowest {slowest:7.1f} ms")
    runs = max(3, args.runs // 3)
    counts = lambda: uplift_counts_store(workspace=workspace, campaign_ids=ids)  # noqa: E731
    median, slowest = timed(counts, runs)
    print(f"matching task's stored counts: median {median:7.1f} ms, slowest {slowest:7.1f} ms")
    sums = lambda: uplift_clusters_store(workspace=workspace, campaign_ids=ids)  # noqa: E731
    median, slowest = timed(sums, runs)
    print(f"matching task's stored sums:   median {median:7.1f} ms, slowest {slowest:7.1f} ms")


if __name__ == "__main__":
    main()
