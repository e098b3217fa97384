"""Any customer id ingestion accepts works on every page and endpoint, however odd."""

import csv
import html
import io
import json
import re
from datetime import timedelta
from urllib.parse import quote

import pytest

from campaigns.tenancy.services import api_key_create
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = pytest.mark.django_db

ODD_IDS = [
    "a/b",
    "/leading",
    "trailing/",
    "a//b",
    "with space",
    "ünïcødé 客户",
    "100%",
    "50%25",
    "what?x=1",
    "hash#tag",
    "..",
    ".",
    "../etc",
    "a/../b",
    "a/./b",
    "plus+sign",
    "semi;colon&amp",
    "<script>",
    "quote'\"",
    "back\\slash",
    "tab\there",
    "new\nline",
    "customers",
    "x/prompt",
    "x/memory",
]


@pytest.fixture
def odd_customers(client, workspace):
    """Send each odd id's events through the API, then recompute everyone."""
    load_synthetic(workspace, customers=12, events=600)
    _, key = api_key_create(workspace=workspace, scopes=["write", "read"], name="odd")
    events = [
        {
            "userId": external_id,
            "event": name,
            "timestamp": (AS_OF - timedelta(hours=hours)).isoformat(),
        }
        for external_id in ODD_IDS
        for name, hours in ((workspace.goal_event, 5), ("Product Viewed", 6))
    ]
    response = client.post(
        "/api/v1/events",
        json.dumps(events),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.content
    recompute_here(workspace=workspace, as_of=AS_OF)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def link(response, element_id: str) -> str:
    found = re.search(rf'<a href="([^"]*)" id="{element_id}"', response.content.decode())
    assert found, f"no #{element_id} link"
    return html.unescape(found.group(1))


def segment(external_id: str) -> str:
    """Quote an id as one path segment, as a careful client does (dot segments escaped)."""
    quoted = quote(external_id, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def test_their_pages_link_to_each_other(member_client, odd_customers):
    for external_id in ODD_IDS:
        pages_link_to_each_other(member_client, external_id)


def pages_link_to_each_other(member_client, external_id: str) -> None:
    page = member_client.get(f"/customers/{segment(external_id)}/")
    assert page.status_code == 200, external_id
    assert page.context["memory"]["customer"] == external_id
    prompt_url = link(page, "prompt-link")
    assert "/../" not in prompt_url and "/./" not in prompt_url  # a browser would collapse them
    prompt = member_client.get(prompt_url)
    assert prompt.status_code == 200
    assert prompt.context["external_id"] == external_id
    back = member_client.get(link(prompt, "memory-link"))
    assert back.status_code == 200 and back.context["memory"]["customer"] == external_id
    drafting = member_client.get(link(page, "next-message-link"))
    assert drafting.status_code == 200 and drafting.context["external_id"] == external_id


def test_the_customer_list_links_to_every_odd_customer(member_client, odd_customers):
    seen = set()
    after = ""
    while True:
        page = member_client.get("/customers/", {"after": after})
        for href in re.findall(r'<a href="(/customers/[^"]+)"', page.content.decode()):
            detail = member_client.get(html.unescape(href))
            assert detail.status_code == 200, href
            seen.add(detail.context["memory"]["customer"])
        after = page.context.get("next_after")
        if not after:
            break
    assert set(ODD_IDS) <= seen


def test_their_endpoints_answer(client, odd_customers):
    for external_id in ODD_IDS:
        endpoints_answer(client, odd_customers, external_id)


def endpoints_answer(client, auth: dict, external_id: str) -> None:
    base = f"/api/v1/customers/{segment(external_id)}"
    memory = client.get(f"{base}/memory", **auth)
    assert memory.status_code == 200, external_id
    assert memory.json()["customer"] == external_id
    score = client.post(
        f"{base}/score", {"messages": ["nope"]}, content_type="application/json", **auth
    )
    assert score.status_code == 200 and score.json()["customer"] == external_id
    prompt = client.get(f"{base}/prompt", **auth)
    assert prompt.status_code == 200, prompt.content
    next_best = client.get(f"{base}/next-best", {"decide": "false"}, **auth)
    assert next_best.status_code == 200 and next_best.json()["customer"] == external_id
    events = client.get("/api/v1/events", {"customer": external_id}, **auth)
    assert events.status_code == 200 and len(events.json()["results"]) == 2


def test_the_exports_carry_every_odd_id_intact(client, odd_customers):
    jsonl = client.get("/api/v1/prompts/export", **odd_customers)
    assert jsonl.status_code == 200
    lines = b"".join(jsonl.streaming_content).decode().splitlines()
    assert set(ODD_IDS) <= {json.loads(line)["customer_id"] for line in lines if line}
    csv_export = client.get("/api/v1/prompts/export", {"format": "csv"}, **odd_customers)
    text = b"".join(csv_export.streaming_content).decode()
    exported = {row["customer_id"] for row in csv.DictReader(io.StringIO(text, newline=""))}
    # Formula-neutralised cells start with a quote; the odd ids here start with none of =+-@.
    assert set(ODD_IDS) <= exported
