"""Time every page and read endpoint on a kept bench workspace, beside an earlier commit's code.

Server time, in-process: Django's test client runs the middleware, the view, its queries and
the template, with no network or browser in the figure. p50/p95 (nearest rank) over --runs
requests per page after one warm-up request; pages of one customer take ten customers, one
request each. Beside each page, the plan node types of its slowest queries from EXPLAIN.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/primer_bench .venv/bin/python bench/pages.py

The workspace is the one `bench/recompute_db.py --keep` keeps (10M events, 200k customers,
recomputed). With --compare REV (default 83e879c, the commit before the pages read stored rows;
"" for none) the same requests run on that commit's code, checked out in a temporary git
worktree, against the same database. A page slower than --budget-s stops after the requests
made by then (at least one), so the old code's half-minute pages do not take an hour.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIM_MS = 300.0
# Tables every request reads to know who asks (sessions, users, keys, memberships): not the
# page's own queries, so left out of the plans shown.
PLUMBING = (
    '"django_session"',
    'FROM "auth_user"',
    '"campaigns_membership"',
    '"campaigns_apikey"',
    'FROM "campaigns_workspace"',
)


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile (with ten values, p95 is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def plan_nodes(plan: dict) -> list[str]:
    """Return a plan's node types, scans with their relation or index."""
    node = plan["Node Type"]
    where = plan.get("Index Name") or plan.get("Relation Name")
    found = [f"{node} ({where})" if where and "Scan" in node else node]
    for child in plan.get("Plans", []):
        found += plan_nodes(child)
    return found


# --- the child: one code base, measured -----------------------------------------------------


def measure(code: Path, slug: str, runs: int, budget_s: float, only: str = "") -> dict:
    """Set Django up from `code`, make the bench's user, key and campaign, time every URL."""
    sys.path.insert(0, str(code))
    os.chdir(code)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from campaigns.catalogue.campaign_services import campaign_create
    from campaigns.models import ApiKey, Campaign, Label, Membership, Message, Workspace
    from campaigns.tenancy.changes import Actor
    from campaigns.tenancy.services import api_key_create, membership_grant, user_ensure
    from memory.models import Customer, RecomputeRun

    workspace = Workspace.objects.get(slug=slug)
    with connection.cursor() as cursor:
        # Current statistics, as autovacuum keeps them: the bench's COPY left the customers'
        # and derived tables unanalysed, and the planner then guesses ~100 customers.
        for table in (
            "memory_customer",
            "memory_customerstate",
            "memory_customernextbest",
            "memory_customerlabelweight",
            "memory_customermessagehabituation",
        ):
            cursor.execute(f"ANALYZE {table}")
    user = user_ensure(username="bench-pages", password="bench-pages-password-1")
    membership_grant(workspace=workspace, user=user, role=Membership.Role.OWNER)
    ApiKey.objects.for_workspace(workspace).filter(name="bench-pages").delete()
    _, raw_key = api_key_create(
        workspace=workspace, scopes=list(ApiKey.Scope.values), name="bench-pages"
    )
    if not Campaign.objects.for_workspace(workspace).filter(slug="bench-pages").exists():
        campaign_create(
            workspace=workspace,
            actor=Actor.system("bench"),
            slug="bench-pages",
            name="Bench pages",
            messages=list(Message.objects.for_workspace(workspace).order_by("pk")[:6]),
        )
    total = Customer.objects.for_workspace(workspace).count()
    # Ten customers spread over the id range, and another one to warm up with.
    picks = [
        Customer.objects.for_workspace(workspace).order_by("pk")[i * total // 11].external_id
        for i in range(11)
    ]
    warm, customers = picks[0], picks[1:]
    label = Label.objects.for_workspace(workspace).order_by("pk").first()
    message = Message.objects.for_workspace(workspace).order_by("pk").first()
    run = RecomputeRun.objects.for_workspace(workspace).order_by("-pk").first()

    pages = {
        "home": "/",
        "customers": "/customers/",
        "customers, sorted by primed": "/customers/?sort=primed",
        "customers, sorted by baseline": "/customers/?sort=baseline",
        "customer page (10 customers)": "/customers/{customer}/",
        "memory": "/memory/",
        "labels": "/catalogue/labels/",
        "a label": f"/catalogue/labels/{label.pk}/",
        "messages": "/catalogue/messages/",
        "a message": f"/catalogue/messages/{message.pk}/",
        "campaigns": "/campaigns/",
        "a campaign (20 customers' next best)": "/campaigns/bench-pages/",
        "a campaign's uplift": "/campaigns/bench-pages/uplift/",
        "guardrails": "/guardrails/",
        "overrides": "/overrides/",
        "insights: overview": "/insights/",
        "insights: associations": "/insights/associations/",
        "insights: habituation": "/insights/habituation/",
        "insights: priming": "/insights/priming/",
        "draft the next message (10 customers)": "/prompts/next-message/{customer}/",
        "prompt templates": "/prompts/templates/",
        "prompts of customers": "/prompts/customers/",
        "message drafts": "/prompts/drafts/",
        "webhooks": "/prompts/webhooks/",
        "audit": "/audit/",
        "imports": "/imports/",
        "settings": "/settings/",
        "members": "/settings/members/",
        "API keys page": "/settings/keys/",
    }
    endpoints = {
        "GET events": "/api/v1/events",
        "GET customer memory (10)": "/api/v1/customers/{customer}/memory",
        "GET customer next-best (10)": "/api/v1/customers/{customer}/next-best",
        "GET customer next-best explore (10)": "/api/v1/customers/{customer}/next-best?explore=1",
        "GET customer prompt (10)": "/api/v1/customers/{customer}/prompt",
        "GET recompute run": f"/api/v1/recompute/{run.pk}",
        "GET memory summary": "/api/v1/memory/summary",
        "GET audit": "/api/v1/audit",
        "GET imports": "/api/v1/imports",
        "GET campaigns": "/api/v1/campaigns",
        "GET members": "/api/v1/members",
        "GET api-keys": "/api/v1/api-keys",
        "GET webhooks": "/api/v1/webhooks",
        "GET label-sets": "/api/v1/label-sets",
        "GET labels": "/api/v1/labels",
        "GET messages": "/api/v1/messages",
        "GET workspace": "/api/v1/workspace",
        "GET guardrails": "/api/v1/guardrails",
        "GET overrides": "/api/v1/overrides",
        "GET a campaign's uplift": "/api/v1/campaigns/bench-pages/uplift",
        "GET preference exports": "/api/v1/preference-exports",
        # Not reads, but a page waits on them: the forms' "Preview effect" (aim: 5 s).
        "POST effect-preview (boost, 2,000 customers)": "POST /api/v1/effect-preview#boost",
        # A segment of the first trait (or, without traits, one customer: their list alone).
        "POST effect-preview (override)": "POST /api/v1/effect-preview#override",
        "POST effect-preview (guardrail, 2,000 customers)": (
            "POST /api/v1/effect-preview#guardrail"
        ),
    }
    if only:
        pages = {name: path for name, path in pages.items() if only in name}
        endpoints = {name: path for name, path in endpoints.items() if only in name}
    ref = f"{label.label_set.slug}:{label.slug}"
    # A segment of the customers' first trait (an override for everyone is a boost).
    traits = next(
        (
            t
            for t in Customer.objects.for_workspace(workspace)
            .exclude(traits={})
            .values_list("traits", flat=True)[:1]
        ),
        {},
    )
    segment = {"all": [{"trait": k, "equals": v} for k, v in list(traits.items())[:1]]}
    # Without traits there is no segment: the override is then the first sampled customer's.
    scope = {"segment": segment} if traits else {"customer": warm}
    preview_bodies = {
        "boost": {"kind": "boost", "label": label.pk, "boost": 1.0, "sample": 2000},
        "override": {
            "kind": "override",
            "sample": 2000,
            "override": {**scope, "label": ref, "action": "pin", "value": 0},
        },
        "guardrail": {
            "kind": "guardrail",
            "sample": 2000,
            "guardrail": {
                "name": "bench cap",
                "kind": "frequency_cap",
                "label": ref,
                "limit": 1,
                "period": "week",
            },
        },
    }
    browser = Client()
    browser.force_login(user)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    def explain(sql: str) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            (row,) = cursor.fetchall()
        document = row[0] if isinstance(row[0], list) else json.loads(row[0])
        return plan_nodes(document[0]["Plan"])

    def timed(client: Client, path: str) -> tuple[float, int, list[dict]]:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            if path.startswith("POST "):
                url, _, kind = path.removeprefix("POST ").partition("#")
                response = client.post(
                    url, preview_bodies[kind or "boost"], content_type="application/json"
                )
            else:
                response = client.get(path)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            seconds = time.perf_counter() - started
        return seconds, response.status_code, captured.captured_queries

    results = {}
    for kind, client, table in (("page", browser, pages), ("api", api, endpoints)):
        for name, template in table.items():
            per_customer = "{customer}" in template
            paths = (
                [template.format(customer=c) for c in customers]
                if per_customer
                else [template] * runs
            )
            timed(client, template.format(customer=warm))  # warm-up, not counted
            seconds, statuses, slowest, started = [], set(), [], time.perf_counter()
            for path in paths:
                took, status, queries = timed(client, path)
                seconds.append(took)
                statuses.add(status)
                if not slowest:  # the first request's slowest reads of data, explained
                    data = [q for q in queries if not any(t in q["sql"] for t in PLUMBING)]
                    slowest = sorted(data, key=lambda q: -float(q["time"]))[:3]
                if time.perf_counter() - started > budget_s:
                    break
            plans = []
            for query in slowest:
                try:
                    plans.append(
                        {"ms": float(query["time"]) * 1000, "nodes": explain(query["sql"])}
                    )
                except Exception as error:  # an EXPLAIN that cannot run (e.g. a SET)
                    plans.append({"ms": float(query["time"]) * 1000, "nodes": [str(error)[:80]]})
            results[name] = {
                "kind": kind,
                "n": len(seconds),
                "p50_ms": statistics.median(seconds) * 1000,
                "p95_ms": percentile(seconds, 0.95) * 1000,
                "status": sorted(statuses),
                "plans": plans,
            }
            print(
                f"  {name}: p50 {results[name]['p50_ms']:.0f} ms, p95 "
                f"{results[name]['p95_ms']:.0f} ms (n={len(seconds)}, {sorted(statuses)})",
                file=sys.stderr,
                flush=True,
            )
    return results


# --- the parent: both code bases, side by side --------------------------------------------


def run_child(code: Path, arguments) -> dict:
    """Measure one code base in a fresh process; return its results."""
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            str(code),
            "--workspace",
            arguments.workspace,
            "--runs",
            str(arguments.runs),
            "--budget-s",
            str(arguments.budget_s),
            "--only",
            arguments.only,
        ],
        cwd=code,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(plans: list[dict]) -> str:
    """Return the distinct node types of a page's explained queries, in order of appearance."""
    seen: dict[str, None] = {}
    for plan in plans:
        for node in plan["nodes"]:
            seen.setdefault(node, None)
    return ", ".join(seen) or "—"


def report(new: dict, old: dict | None, revision: str) -> None:
    """Print the side-by-side table and the plans."""
    head = f"| page or endpoint | {revision} p50 / p95 | this code p50 / p95 | aim met |"
    print(head + "\n|---|---|---|---|")
    for name, row in new.items():
        before = (old or {}).get(name)
        was = (
            f"{before['p50_ms']:,.0f} / {before['p95_ms']:,.0f} ms (n={before['n']}"
            + (f", HTTP {before['status'][0]}" if before["status"] != [200] else "")
            + ")"
            if before
            else "—"
        )
        status = "" if row["status"] == [200] else f", HTTP {row['status']}"
        aim = 5000.0 if name.startswith("POST effect-preview") else AIM_MS
        met = "yes" if row["p95_ms"] <= aim and row["status"] == [200] else "**no**"
        print(
            f"| {name} | {was} | {row['p50_ms']:,.0f} / {row['p95_ms']:,.0f} ms "
            f"(n={row['n']}{status}) | {met} |"
        )
    print(
        "\nPlans of each page's slowest queries (this code; the earlier code's where it differs):"
    )
    for name, row in new.items():
        print(f"- {name}: {summary(row['plans'])}")
        before = (old or {}).get(name)
        if before and summary(before["plans"]) != summary(row["plans"]):
            print(f"    {revision}: {summary(before['plans'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", default="bench-recompute-10m")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=60.0)
    parser.add_argument("--compare", default="83e879c", help="a commit to compare with, or ''")
    parser.add_argument("--only", default="", help="time only pages whose name holds this")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL=postgres://... : this benchmark measures PostgreSQL.")
    if arguments.child:
        results = measure(
            Path(arguments.child),
            arguments.workspace,
            arguments.runs,
            arguments.budget_s,
            arguments.only,
        )
        print(json.dumps(results))
        return
    print(f"This code ({ROOT}):", file=sys.stderr)
    new = run_child(ROOT, arguments)
    old = None
    if arguments.compare:
        with tempfile.TemporaryDirectory() as folder:
            tree = Path(folder) / "code"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), arguments.compare],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            try:
                print(f"{arguments.compare} ({tree}):", file=sys.stderr)
                old = run_child(tree, arguments)
            finally:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True
                )
    report(new, old, arguments.compare or "—")


if __name__ == "__main__":
    main()
