"""Benchmark the full and incremental recompute through PostgreSQL (prints figures, no asserts).

For each size: generate a synthetic workspace (planted preferences, clusters of similar
messages, priming actions), COPY it into PostgreSQL, time the raw COPY-out of its events (the
ceiling), then run `manage.py recompute` in a fresh process — full, then incremental after
10,000 new events — reporting wall time, events/s and that process's peak memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/recompute_db.py
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from campaigns.models import Campaign, Message, Workspace  # noqa: E402
from campaigns.tenancy.services import workspace_create  # noqa: E402
from memory.db.writeback import frame_insert  # noqa: E402
from memory.importers.synthetic import engine_frames_load  # noqa: E402
from memory.scoring.synthetic import synthetic_workspace  # noqa: E402

SIZES = {"1M": (20_000, 1_000_000), "10M": (200_000, 10_000_000)}
ORIGIN = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_H = 4_320.0


def drop_workspace(slug: str) -> None:
    """Delete a scratch workspace with set-based SQL (an ORM cascade would load every row)."""
    found = Workspace.objects.filter(slug=slug).first()
    if found is None:
        return
    with connection.cursor() as cursor:
        for table in (
            "memory_customerlabelweight",
            "memory_customermessagehabituation",
            "memory_customerstate",
            "memory_primingindicator",
            "memory_event",
            "memory_recomputerun",
            "memory_customer",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [found.pk])
    found.delete()


def copy_out_rate(workspace_id: int) -> tuple[int, float]:
    """Return (rows, seconds) for psql to COPY the engine's columns out (the ceiling)."""
    sql = (
        "COPY (SELECT customer_id, name, EXTRACT(EPOCH FROM occurred_at)::float8 / 3600.0,"
        f" message_id FROM memory_event WHERE workspace_id = {int(workspace_id)}) TO STDOUT"
    )
    started = time.perf_counter()
    done = subprocess.run(
        ["psql", os.environ["DATABASE_URL"], "-q", "-c", sql],
        stdout=subprocess.PIPE,
        check=True,
    )
    seconds = time.perf_counter() - started
    return done.stdout.count(b"\n"), seconds


def recompute(slug: str, *extra: str) -> tuple[float, float, str]:
    """Run `manage.py recompute` in a child; return (wall s, child peak RSS MB, its summary).

    The summary ends with the recompute's own time, without the ~3 s a fresh Python process
    takes to import Django, polars and scikit-learn (a worker has them loaded already).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "recompute", "--workspace", slug, "--verbosity", "0", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024, done.stdout.strip()


def add_new_events(workspace: Workspace, count: int, seed: int) -> None:
    """COPY `count` new events (sends and goals) for existing customers, received now."""
    rng = np.random.default_rng(seed)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM memory_customer WHERE workspace_id = %s ORDER BY id LIMIT 2000",
            [workspace.pk],
        )
        ids = np.array([row[0] for row in cursor.fetchall()])
    when = ORIGIN + timedelta(hours=SPAN_H - 1)
    frame = pl.DataFrame(
        {
            "workspace_id": workspace.pk,
            "customer_id": rng.choice(ids, count),
            "name": rng.choice(["Order Completed", "Product Viewed"], count),
            "occurred_at": [when] * count,
            "received_at": [datetime.now(UTC)] * count,
            "properties": "{}",
            "message_key": "",
            # Unique per call: a kept workspace gets another 10k new events on every run.
            "dedup_key": [f"bench-new-{seed}-{time.time_ns()}-{i}" for i in range(count)],
        }
    )
    with connection.cursor() as cursor:
        frame_insert(cursor, "memory_event", frame)


def load(name: str, seed: int) -> Workspace:
    """Generate the synthetic workspace of this size and COPY it in (replacing an old one)."""
    customers, events = SIZES[name]
    slug = f"bench-recompute-{name.lower()}"
    drop_workspace(slug)
    workspace = workspace_create(slug=slug)
    started = time.perf_counter()
    synthetic = synthetic_workspace(customers, events, span_h=SPAN_H, seed=seed)
    generated = time.perf_counter()
    counts = engine_frames_load(
        workspace=workspace,
        events=synthetic.events,
        messages=synthetic.messages,
        message_labels=synthetic.message_labels,
        origin=ORIGIN,
    )
    loaded = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE memory_event")
    print(
        f"{name}: {counts['events']:,} events, {counts['customers']:,} customers "
        f"(generated {generated - started:.1f} s, COPY in {loaded - generated:.1f} s)"
    )
    return workspace


def live_campaign_set(workspace: Workspace, messages: int) -> None:
    """Give the workspace one live campaign of its last `messages` messages (none for 0): the
    recompute then stores them for every customer besides their best."""
    Campaign.objects.for_workspace(workspace).filter(slug="bench-campaign").delete()
    if messages:
        campaign = Campaign.objects.create(
            workspace=workspace, slug="bench-campaign", name="Bench campaign"
        )
        campaign.messages.set(Message.objects.for_workspace(workspace).order_by("-pk")[:messages])
        print(f"  a live campaign of {messages} messages")


def run(name: str, seed: int, keep: bool, campaign_messages: int = 0) -> None:
    slug = f"bench-recompute-{name.lower()}"
    workspace = Workspace.objects.filter(slug=slug).first() if keep else None
    if workspace is None:
        workspace = load(name, seed)
    else:
        print(f"{name}: reusing the workspace {slug} kept by an earlier run (--keep)")
    live_campaign_set(workspace, campaign_messages)
    rows, copy_s = copy_out_rate(workspace.pk)
    print(
        f"  raw COPY out:      {rows:>11,} rows in {copy_s:6.1f} s = {rows / copy_s:>10,.0f} rows/s"
    )
    wall, peak, summary = recompute(slug)
    took = float(summary.rsplit(" in ", 1)[1].rstrip(" s."))
    print(
        f"  full recompute:    {took:6.1f} s = {rows / took:>10,.0f} events/s "
        f"({wall:.1f} s with process start-up), peak {peak:,.0f} MB\n    {summary}"
    )
    add_new_events(workspace, 10_000, seed)
    wall, peak, summary = recompute(slug, "--incremental")
    took = float(summary.rsplit(" in ", 1)[1].rstrip(" s."))
    print(
        f"  incremental, 10k new events: {took:.1f} s ({wall:.1f} s with process start-up)"
        f"\n    {summary}"
    )
    if not keep:
        drop_workspace(slug)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1M,10M", help="Comma-separated among 1M, 10M.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the workspace afterwards and reuse a kept one instead of loading it again",
    )
    parser.add_argument(
        "--campaign-messages",
        type=int,
        default=0,
        help="give the workspace a live campaign of this many messages (stored for everyone)",
    )
    arguments = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL=postgres://... : this benchmark measures PostgreSQL.")
    call_command("migrate", verbosity=0)  # a fresh database has no tables yet
    for name in arguments.sizes.split(","):
        run(name.strip(), arguments.seed, arguments.keep, arguments.campaign_messages)


if __name__ == "__main__":
    main()
