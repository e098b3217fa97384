"""Time the prompt export of many customers against PostgreSQL, and watch its memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/primer_bench .venv/bin/python bench/export.py

Creates a scratch workspace with N customers (default 200,000) and their derived memory
(six label weights each, two worn-out messages, recent sends, a priming action for a third of
them) with set-based SQL, exports every prompt as JSON Lines to a temporary file through the same
code as the API and `export_prompts`, prints wall time, prompts per second and the process's
resident memory as the export goes, then deletes the scratch rows.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from campaigns.catalogue.services import MessageSpec, messages_upsert  # noqa: E402
from campaigns.models import LabelSet, Workspace  # noqa: E402
from campaigns.prompts.export import export_pieces  # noqa: E402
from campaigns.prompts.selectors import prompt_choice  # noqa: E402
from campaigns.tenancy.services import workspace_create  # noqa: E402

MEMORY_AT = "2026-03-10 12:00:00+00"
VALUE_PROPOSITIONS = ["convenience", "discount", "bogo", "quality"]
TONES = ["playful", "serious"]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def create_workspace(customers: int) -> Workspace:
    workspace = workspace_create(slug=f"bench-export-{os.getpid()}", name="Bench export")
    messages_upsert(
        workspace=workspace,
        specs=[
            MessageSpec(
                key=f"m{i:02d}",
                subject=f"Offer {i}: {VALUE_PROPOSITIONS[i % 4]} for you",
                body=f"Message body number {i}, about {VALUE_PROPOSITIONS[i % 4]}.",
                labels={
                    LabelSet.VALUE_PROPOSITION: [VALUE_PROPOSITIONS[i % 4]],
                    "tone": [TONES[i % 2]],
                },
            )
            for i in range(20)
        ],
    )
    ws = workspace.pk
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO memory_customer
                (workspace_id, external_id, anonymous_id, traits, first_seen_at, last_seen_at)
            SELECT %s, 'b' || lpad(g::text, 7, '0'), '',
                   jsonb_build_object('plan', (ARRAY['free','gold','pro'])[1 + g %% 3],
                                      'age', 18 + g %% 60, 'city', 'City ' || (g %% 97)),
                   %s::timestamptz - interval '300 days', %s::timestamptz
            FROM generate_series(1, %s) AS g
            """,
            [ws, MEMORY_AT, MEMORY_AT, customers],
        )
        cursor.execute(
            """
            INSERT INTO memory_customerstate
                (workspace_id, customer_id, primed_score, baseline_rate, signals,
                 last_recompute_at, goal_count, observed_hours, hours_since_goal,
                 frequency_rate_h, segment_rate_h)
            SELECT %s, id, (id %% 17) / 10.0, 0.05, '[]'::jsonb, %s::timestamptz,
                   id %% 9, 720.0, CASE WHEN id %% 9 > 0 THEN (id %% 200) + 1.5 END,
                   (id %% 9 + 1) / 720.0, 0.004
            FROM memory_customer WHERE workspace_id = %s
            """,
            [ws, MEMORY_AT, ws],
        )
        cursor.execute(
            """
            INSERT INTO memory_customerlabelweight
                (workspace_id, customer_id, label_id, alpha, beta, exposures, conversions,
                 weight, weight_low, weight_high, evidence, lift, computed_at)
            SELECT %s, c.id, l.id, 2 + (c.id * l.id) %% 30, 10 + (c.id + l.id) %% 20,
                   (c.id + l.id) %% 25, (c.id * l.id) %% 5,
                   ((c.id * 7 + l.id * 13) %% 100) / 100.0, 0.0, 1.0,
                   12 + (c.id * l.id) %% 30 + (c.id + l.id) %% 20, 1.1, %s::timestamptz
            FROM memory_customer c CROSS JOIN campaigns_label l
            WHERE c.workspace_id = %s AND l.workspace_id = %s
            """,
            [ws, MEMORY_AT, ws, ws],
        )
        cursor.execute(
            """
            INSERT INTO memory_customermessagehabituation
                (workspace_id, customer_id, message_id, load, sends, last_sent_at, computed_at)
            SELECT %s, c.id, m.id, ((c.id + m.id) %% 30) / 10.0, 1 + (c.id %% 4),
                   %s::timestamptz - ((c.id %% 90) || ' hours')::interval, %s::timestamptz
            FROM memory_customer c
            JOIN campaigns_message m ON m.workspace_id = %s
                 AND m.key IN ('m' || lpad((c.id %% 20)::text, 2, '0'),
                               'm' || lpad(((c.id + 7) %% 20)::text, 2, '0'))
            WHERE c.workspace_id = %s
            """,
            [ws, MEMORY_AT, MEMORY_AT, ws, ws],
        )
        cursor.execute(
            """
            INSERT INTO memory_primingindicator
                (workspace_id, event_name, lift, odds_ratio, odds_ratio_low, odds_ratio_high,
                 support, median_lead_h, computed_at)
            VALUES (%s, 'Product Viewed', 2.4, 2.9, 1.8, 4.1, 5000, 6.0, %s::timestamptz)
            """,
            [ws, MEMORY_AT],
        )
        cursor.execute(
            """
            INSERT INTO memory_event
                (workspace_id, customer_id, name, occurred_at, received_at, properties,
                 message_id, message_key, dedup_key)
            SELECT %s, h.customer_id, 'Message Sent',
                   %s::timestamptz - ((k * 40 + h.customer_id %% 30) || ' hours')::interval,
                   %s::timestamptz, '{}'::jsonb, h.message_id, '',
                   'bench-send-' || h.id || '-' || k
            FROM memory_customermessagehabituation h CROSS JOIN generate_series(0, 1) AS k
            WHERE h.workspace_id = %s
            """,
            [ws, MEMORY_AT, MEMORY_AT, ws],
        )
        cursor.execute(
            """
            INSERT INTO memory_event
                (workspace_id, customer_id, name, occurred_at, received_at, properties,
                 message_key, dedup_key)
            SELECT %s, id, 'Product Viewed',
                   %s::timestamptz - ((id %% 70) || ' hours')::interval, %s::timestamptz,
                   jsonb_build_object('product', 'Laptop ' || (id %% 50), 'price', id %% 2000),
                   '', 'bench-view-' || id
            FROM memory_customer WHERE workspace_id = %s AND id %% 3 = 0
            """,
            [ws, MEMORY_AT, MEMORY_AT, ws],
        )
        cursor.execute("ANALYZE")
    return workspace


def drop_workspace(workspace_id: int) -> None:
    tables = [
        "campaigns_webhookprompthash",
        "memory_event",
        "memory_customermessagehabituation",
        "memory_customerlabelweight",
        "memory_customerstate",
        "memory_primingindicator",
        "memory_customer",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace_id])
    Workspace.objects.filter(pk=workspace_id).delete()


def export(workspace: Workspace, choice, processes: int) -> None:
    baseline = rss_mb()
    samples = []
    count = size = 0
    next_sample = 20_000
    cpu_started, children_started = time.process_time(), children_cpu_s()
    started = time.perf_counter()
    with tempfile.TemporaryFile("w", encoding="utf-8") as out:
        pieces = export_pieces(workspace=workspace, choice=choice, fmt="jsonl", processes=processes)
        for prompts, piece in pieces:
            out.write(piece)
            size += len(piece)
            count += prompts
            if count >= next_sample:
                samples.append((count, rss_mb()))
                next_sample += 20_000
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    workers = children_cpu_s() - children_started
    print(f"\n{processes} process(es): exported {count:,} prompts in {elapsed:.1f} s")
    print(f"  {count / elapsed:,.0f} prompts/s, {size / 2**20:.0f} MB of JSON Lines")
    # CPU time tells the cost when other work shares the machine's cores (wall time does not).
    print(
        f"  CPU: {cpu:.1f} s in this process + {workers:.1f} s in workers"
        f" = {(cpu + workers) / count * 1e6:.0f} us per prompt (PostgreSQL's own CPU not counted)"
    )
    print(f"  resident memory of this process before the export: {baseline:.0f} MB; during it:")
    print("  " + ", ".join(f"{n // 1000}k: {mb:.0f} MB" for n, mb in samples))
    print(f"  peak resident memory of this process so far: {peak_rss_mb():.0f} MB")
    if processes > 1:
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"  peak resident memory of a worker process: {children:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch workspace.")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL=postgres://... : this benchmark runs against PostgreSQL.")
    call_command("migrate", verbosity=0)

    started = time.perf_counter()
    workspace = create_workspace(args.customers)
    print(
        f"created {args.customers:,} customers with memory in {time.perf_counter() - started:.1f} s"
    )
    try:
        choice = prompt_choice(workspace=workspace)
        for processes in sorted({1, args.processes}):
            export(workspace, choice, processes)
    finally:
        if not args.keep:
            drop_workspace(workspace.pk)


if __name__ == "__main__":
    main()
