"""Print ingestion speed against PostgreSQL: raw COPY, file import, HTTP batches via gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/primer_bench .venv/bin/python bench/ingest.py

Migrates the database, works in a scratch workspace and deletes it at the end. The figures:
the raw COPY rate of the events table (the ceiling: no validation, no dedup), the rate of
`import_events` on a Segment JSONL file, and the rate of /v1/batch requests of 500 events sent
by a few client processes to gunicorn on 127.0.0.1. The request bodies are encoded and the
client processes started before the clock starts, so the figure is the server's: every event
still goes through /v1/batch, its key check, validation, dedup and the store, committed before
the answer, and the bench checks afterwards that every one is stored.
"""

import argparse
import http.client
import json
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from served import basic_auth, gunicorn_serving

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from campaigns.models import Workspace  # noqa: E402
from campaigns.tenancy.services import api_key_create, workspace_create  # noqa: E402
from memory.importers.lines import jsonl_lines  # noqa: E402
from memory.models import Customer, Event  # noqa: E402
from memory.services import events_import  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)


def segment_event(i: int, customers: int, tag: str) -> dict:
    return {
        "type": "track",
        "userId": f"{tag}-user-{i % customers}",
        "event": ("Product Viewed", "Order Completed", "Message Opened")[i % 3],
        "messageId": f"{tag}-{i}",
        "timestamp": (START + timedelta(seconds=i)).isoformat(),
        "properties": {"sku": f"sku-{i % 977}", "price": round(1 + (i % 50) * 0.5, 2)},
    }


def bench_raw_copy(workspace: Workspace, events: int, customers: int) -> float:
    """COPY straight into memory_event (customers made first, not timed): the ceiling."""
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY memory_customer (workspace_id, external_id, anonymous_id, traits) FROM STDIN"
        ) as copy,
    ):
        for c in range(customers):
            copy.write_row((workspace.pk, f"raw-user-{c}", "", "{}"))
    ids = list(
        Customer.objects.for_workspace(workspace)
        .filter(external_id__startswith="raw-user-")
        .order_by("id")
        .values_list("id", flat=True)
    )
    now = datetime.now(UTC)
    started = time.perf_counter()
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY memory_event (workspace_id, customer_id, name, occurred_at, received_at,"
            " properties, message_key, dedup_key) FROM STDIN"
        ) as copy,
    ):
        for i in range(events):
            event = segment_event(i, customers, "raw")
            copy.write_row(
                (
                    workspace.pk,
                    ids[i % customers],
                    event["event"],
                    START + timedelta(seconds=i),
                    now,
                    msgspec.json.encode(event["properties"]).decode(),
                    "",
                    event["messageId"],
                )
            )
    return events / (time.perf_counter() - started)


def bench_file_import(workspace: Workspace, events: int, customers: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.jsonl"
        with open(path, "wb") as handle:
            for i in range(events):
                handle.write(msgspec.json.encode(segment_event(i, customers, "file")) + b"\n")
        started = time.perf_counter()
        summary = events_import(workspace=workspace, lines=jsonl_lines(path), source=str(path))
        elapsed = time.perf_counter() - started
    assert summary.stored == events and not summary.rejected, summary
    return events / elapsed


_bodies: list[bytes] = []  # set before the client processes fork, read by them
_target: tuple[int, str] = (0, "")


def _send(index: int) -> int:
    port, auth = _target
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        "/v1/batch",
        body=_bodies[index],
        headers={"Content-Type": "application/json", "Authorization": auth},
    )
    status = conn.getresponse().status
    conn.close()
    return status


def bench_http(workspace: Workspace, batches: int, batch_size: int, clients: int, workers: int):
    global _bodies, _target
    _, raw_key = api_key_create(workspace=workspace, scopes=["write"], name="bench")
    with gunicorn_serving(workers=workers) as port:
        _bodies = [
            json.dumps(
                {
                    "batch": [
                        segment_event(b * batch_size + i, 5_000, "http") for i in range(batch_size)
                    ]
                }
            ).encode()
            for b in range(batches)
        ]
        _target = (port, basic_auth(raw_key))
        connection.close()  # the client processes fork from here
        statuses = [_send(0)]  # warm up (connections to PostgreSQL)
        with ProcessPoolExecutor(clients) as pool:
            list(pool.map(abs, range(clients)))  # the client processes are up
            started = time.perf_counter()
            statuses += pool.map(_send, range(1, batches))
            elapsed = time.perf_counter() - started
    bad = [s for s in statuses if s != 200]
    assert not bad, f"{len(bad)} requests failed: {sorted(set(bad))}"
    stored = Event.objects.for_workspace(workspace).filter(dedup_key__startswith="http-").count()
    assert stored == batches * batch_size, stored
    return (batches - 1) * batch_size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=201, help="HTTP requests of 500 events")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP client processes")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL=postgres://... : this benchmark measures PostgreSQL.")
    call_command("migrate", verbosity=0)
    workspace = workspace_create(slug=f"bench-{secrets.token_hex(4)}", name="Benchmark (scratch)")
    print(f"PostgreSQL, {os.cpu_count()} cores; scratch workspace {workspace.slug}")
    try:
        raw = bench_raw_copy(workspace, args.events, args.customers)
        print(f"raw COPY into memory_event:  {raw:>9,.0f} rows/s ({args.events:,} rows)")
        imported = bench_file_import(workspace, args.events, args.customers)
        print(
            f"import_events (JSONL file):  {imported:>9,.0f} events/s "
            f"({args.events:,} events, {imported / raw:.0%} of raw COPY)"
        )
        over_http = bench_http(workspace, args.batches, 500, args.clients, args.workers)
        print(
            f"HTTP /v1/batch via gunicorn: {over_http:>9,.0f} events/s "
            f"({args.batches - 1} batches of 500, {args.clients} clients, "
            f"{args.workers} workers)"
        )
    finally:
        Workspace.objects.filter(pk=workspace.pk).delete()
        print(f"deleted {workspace.slug}")


if __name__ == "__main__":
    main()
