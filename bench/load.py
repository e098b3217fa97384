"""Drive the HTTP API at a steady rate while incremental recomputes run; print what it held.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/primer_bench .venv/bin/python bench/load.py

Starts gunicorn (3 workers) on 127.0.0.1 against a scratch workspace, then a second process
sends /v1/batch requests of 500 events at a steady rate (default 5,000 events/s) for a fixed
time (default 60 s) and stops by itself; meanwhile this process runs an incremental recompute
of the workspace every --recompute-every seconds, as the debounce would trigger them. Prints
the throughput, the p50/p95/p99 latency per batch, the errors, and whether the events stored
equal the events the server accepted. The request bodies are encoded before the clock starts.
Bounded: a request that would start after the end is not sent, and every wait has a timeout.
The scratch workspace is deleted at the end.
"""

import argparse
import http.client
import logging
import multiprocessing
import os
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
from django.db import connection, connections  # noqa: E402

from campaigns.models import Workspace  # noqa: E402
from campaigns.tenancy.services import api_key_create, workspace_create  # noqa: E402
from memory.models import Event  # noqa: E402
from memory.recompute.service import recompute_request  # noqa: E402

# The recomputes' eager Celery tasks log each success: keep the figures readable.
logging.getLogger("celery").setLevel(logging.WARNING)

BATCH = 500
START = datetime(2026, 1, 1, tzinfo=UTC)
CUSTOMERS = 5_000


def event(i: int) -> dict:
    """A send, an open or a purchase of one of CUSTOMERS customers, one second apart."""
    customer = f"load-user-{i % CUSTOMERS}"
    kind = i % 4
    base = {
        "type": "track",
        "userId": customer,
        "messageId": f"load-{i}",
        "timestamp": (START + timedelta(seconds=i)).isoformat(),
    }
    if kind == 0:
        offer = f"offer-{i % 12}"
        return {
            **base,
            "event": "Message Sent",
            "properties": {
                "message_id": offer,
                "text": f"Offer {offer}",
                "labels": {"tone": ("playful", "serious")[i % 2]},
            },
        }
    if kind == 3:
        return {**base, "event": "Order Completed", "properties": {"revenue": 5 + i % 20}}
    return {**base, "event": "Product Viewed", "properties": {"sku": f"sku-{i % 977}"}}


def generate(port: int, auth: str, rate: float, seconds: float, senders: int, results) -> None:
    """The load process: send batches on a fixed schedule, put [(status, latency_s)] on results."""
    batches = max(1, int(rate * seconds / BATCH))
    bodies = [
        msgspec.json.encode({"batch": [event(b * BATCH + i) for i in range(BATCH)]})
        for b in range(batches)
    ]
    interval = BATCH / rate
    local = threading.local()
    started = time.perf_counter()
    deadline = started + seconds

    def send(index: int) -> tuple[int, float]:
        due = started + index * interval
        time.sleep(max(0.0, due - time.perf_counter()))
        if time.perf_counter() >= deadline:
            return 0, 0.0  # never sent: the server fell behind the schedule past the end
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        begun = time.perf_counter()
        try:
            local.conn.request(
                "POST",
                "/v1/batch",
                body=bodies[index],
                headers={"Content-Type": "application/json", "Authorization": auth},
            )
            response = local.conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            local.conn.close()
            del local.conn
            status = -1
        return status, time.perf_counter() - begun

    with ThreadPoolExecutor(senders) as pool:
        outcome = list(pool.map(send, range(batches)))
    results.put((outcome, time.perf_counter() - started))


def recompute_while(stop: threading.Event, workspace: Workspace, every: float, runs: list) -> None:
    """Run an incremental recompute every `every` seconds until told to stop."""
    try:
        while not stop.wait(every):
            begun = time.perf_counter()
            run = recompute_request(
                workspace=workspace, incremental=True, requested_by="command", on_workers=False
            )
            runs.append((run.mode, run.customers, time.perf_counter() - begun))
    finally:
        connections.close_all()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5_000, help="events per second sent")
    parser.add_argument("--seconds", type=float, default=60, help="how long to send")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--senders", type=int, default=8, help="concurrent connections")
    parser.add_argument("--recompute-every", type=float, default=15, help="seconds")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL=postgres://... : this benchmark measures PostgreSQL.")
    call_command("migrate", verbosity=0)
    workspace = workspace_create(slug=f"load-{secrets.token_hex(4)}", name="Load (scratch)")
    _, raw_key = api_key_create(workspace=workspace, scopes=["write"], name="load")
    auth = basic_auth(raw_key)
    print(f"PostgreSQL, {os.cpu_count()} cores; scratch workspace {workspace.slug}")
    stop, runs = threading.Event(), []
    recomputing = None
    # No REDIS_URL for the server: this process runs the recomputes, the server only stores.
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    with gunicorn_serving(workers=args.workers, env=env) as port:
        try:
            connection.close()  # the load process forks from here
            context = multiprocessing.get_context("fork")
            results = context.Queue()
            load = context.Process(
                target=generate,
                args=(port, auth, args.rate, args.seconds, args.senders, results),
            )
            load.start()
            recomputing = threading.Thread(
                target=recompute_while, args=(stop, workspace, args.recompute_every, runs)
            )
            recomputing.start()
            outcome, elapsed = results.get(timeout=args.seconds + 600)
            load.join(timeout=30)
        finally:
            stop.set()
            if recomputing is not None:
                recomputing.join(timeout=600)
    sent = [(status, latency) for status, latency in outcome if status != 0]
    accepted = sum(1 for status, _ in sent if status == 200)
    errors = len(sent) - accepted
    latencies_ms = [latency * 1000 for status, latency in sent if status == 200]
    stored = Event.objects.for_workspace(workspace).count()
    print(
        f"sent {len(sent)} of {len(outcome)} scheduled batches of {BATCH} in {elapsed:.1f} s "
        f"at a target of {args.rate:,.0f} events/s ({args.workers} gunicorn workers, "
        f"{args.senders} connections; the rest fell behind the schedule past the end)"
    )
    print(f"throughput: {accepted * BATCH / elapsed:,.0f} events/s accepted")
    print(
        f"latency per batch: p50 {percentile(latencies_ms, 0.50):.0f} ms, "
        f"p95 {percentile(latencies_ms, 0.95):.0f} ms, p99 {percentile(latencies_ms, 0.99):.0f} ms"
    )
    print(f"errors: {errors} ({sorted({s for s, _ in sent if s != 200})})")
    print(
        f"stored {stored:,} of {accepted * BATCH:,} accepted events: "
        f"{'none lost' if stored == accepted * BATCH else 'MISMATCH'}"
    )
    for mode, customers, seconds in runs:
        print(f"recompute during the load: {mode}, {customers:,} customers, {seconds:.1f} s")
    Workspace.objects.filter(pk=workspace.pk).delete()
    print(f"deleted {workspace.slug}")


if __name__ == "__main__":
    main()
