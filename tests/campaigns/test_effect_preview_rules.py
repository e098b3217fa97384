"""Previewing an override's or a guardrail's effect on next best messages and prompts, from the
stored lists and the read path's own rules, before saving (docs/decisions/0110)."""

import pytest
from django.urls import reverse

from campaigns.models import Guardrail, Label, Override
from campaigns.prompts.preview import effect_preview
from campaigns.strategy.services import guardrail_proposed, override_create, override_proposed
from campaigns.tenancy.changes import Actor
from campaigns.tenancy.services import api_key_create
from memory.models import CustomerNextBest
from tests.memory.engine_fixtures import load_synthetic, recompute_here

GOLD = {"all": [{"trait": "plan", "equals": "gold"}]}
EVERYONE = 1_000  # a sample above the workspace's 120 customers: all of them
ACTOR = Actor(name="anna")


@pytest.fixture
def stored(workspace):
    load_synthetic(workspace, customers=120, events=12_000)
    recompute_here(workspace=workspace)


@pytest.fixture
def playful(workspace, stored):
    return Label.objects.for_workspace(workspace).get(slug="playful")


def _lists(workspace, label):
    """Return each customer's stored rows: (external id, plan, rank, carries the label)."""
    carrying = set(label.messages.values_list("pk", flat=True))
    return [
        (eid, (traits or {}).get("plan"), rank, message_id in carrying)
        for eid, traits, rank, message_id in CustomerNextBest.objects.for_workspace(workspace)
        .filter(customer__isnull=False, message__active=True)
        .values_list("customer__external_id", "customer__traits", "rank", "message_id")
    ]


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_it_counts_the_customers_a_segment_pin_to_zero_excludes_messages_for(workspace, playful):
    rows = _lists(workspace, playful)
    gold = {eid for eid, plan, _, _ in rows if plan == "gold"}
    hit = [(eid, rank) for eid, plan, rank, carries in rows if plan == "gold" and carries]
    tops = {eid for eid, rank in hit if rank == 1}
    assert hit and tops  # the synthetic workspace has gold customers whose top is playful

    never = override_proposed(
        workspace=workspace,
        actor=ACTOR,
        override=None,
        changes={"segment": GOLD, "label": playful, "action": "pin", "value": 0.0},
    )
    answer = effect_preview(workspace=workspace, kind="override", override=never, sample=EVERYONE)

    assert answer["sample"] == 120 and answer["touched"] == len(gold)
    assert answer["excluded"] == {"customers": len({eid for eid, _ in hit}), "messages": len(hit)}
    assert answer["changed"] == len(tops)
    lo, hi = answer["interval"]
    assert lo <= answer["share"] == len(tops) / 120 <= hi
    example = answer["example"]
    assert example["customer"] == min(tops)
    assert example["excluded"] and all("never" in item["reason"] for item in example["excluded"])
    assert all(
        item["message"] not in playful.messages.values_list("key", flat=True)
        for item in example["after"]
    )

    prompts = answer["prompts"]
    assert prompts["touched"] == len(gold) and prompts["rendered"] == len(gold)
    assert 0 < prompts["changed"] <= len(gold) and prompts["cap"] == 300
    diff = prompts["example"]["diff"]
    assert any(line.startswith("+") and "never" in line for line in diff)
    assert prompts["example"]["customer"] in gold


def test_archiving_the_pin_releases_what_it_excluded(workspace, playful):
    saved = override_create(
        workspace=workspace,
        actor=ACTOR,
        segment=GOLD,
        label=playful,
        action="pin",
        value=0.0,
    )
    archived = override_proposed(
        workspace=workspace, actor=ACTOR, override=saved, changes={"active": False}
    )
    answer = effect_preview(
        workspace=workspace, kind="override", override=archived, sample=EVERYONE
    )
    hit = [
        (eid, r)
        for eid, plan, r, carries in _lists(workspace, playful)
        if plan == "gold" and carries
    ]
    assert answer["released"] == {"customers": len({eid for eid, _ in hit}), "messages": len(hit)}
    assert answer["excluded"] == {"customers": 0, "messages": 0}
    assert answer["changed"] == len({eid for eid, rank in hit if rank == 1})
    assert answer["prompts"]["changed"] > 0


def test_a_frequency_cap_of_zero_on_a_label_changes_the_tops_that_carry_it(workspace, playful):
    rows = _lists(workspace, playful)
    tops = {eid for eid, _, rank, carries in rows if rank == 1 and carries}
    cap = guardrail_proposed(
        workspace=workspace,
        actor=ACTOR,
        guardrail=None,
        changes={
            "name": "No playful",
            "kind": "frequency_cap",
            "label": playful,
            "limit": 0,
            "period": "day",
        },
    )
    answer = effect_preview(workspace=workspace, kind="guardrail", guardrail=cap, sample=EVERYONE)
    assert answer["changed"] == len(tops) > 0
    assert answer["excluded"]["messages"] == sum(carries for *_, carries in rows)
    assert "No playful" in {item["rule"] for item in answer["example"]["excluded"]}
    shift = next(row for row in answer["label_shifts"]["tone"] if row["label"] == "playful")
    assert shift["before"] == len(tops) / 120 and shift["after"] == 0
    # A guardrail decides what may be sent, not what a prompt says.
    assert answer["prompts"]["rendered"] == 0 and answer["prompts"]["example"] is None


def test_a_customers_own_override_is_previewed_on_them(workspace, playful):
    eid = next(eid for eid, _, rank, carries in _lists(workspace, playful) if rank == 1 and carries)
    never = override_proposed(
        workspace=workspace,
        actor=ACTOR,
        override=None,
        changes={"customer_external_id": eid, "label": playful, "action": "pin", "value": 0.0},
    )
    answer = effect_preview(workspace=workspace, kind="override", override=never)
    assert answer["sample"] == 1 and answer["changed"] == 1
    assert answer["example"]["customer"] == eid and eid in answer["note"]
    assert answer["prompts"]["rendered"] == 1 and answer["prompts"]["changed"] == 1


def test_the_api_previews_overrides_and_guardrails_and_names_the_wrong_field(
    client, workspace, other_workspace, read_key, playful
):
    def post(body, key=read_key):
        return client.post(
            "/api/v1/effect-preview", body, content_type="application/json", **bearer(key)
        )

    pin = {"segment": GOLD, "label": "tone:playful", "action": "pin", "value": 0}
    answer = post({"kind": "override", "override": pin, "sample": 100, "seed": 2})
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["kind"] == "override" and body["sample"] == 100 and body["excluded"]["customers"]
    assert body["prompts"]["example"]["diff"]

    cap = {"name": "None", "kind": "frequency_cap", "label": "tone:playful", "limit": 0}
    for wrong, where, field in (
        ({"kind": "override", "override": {**pin, "value": None}}, "override", "value"),
        ({"kind": "override", "override": {**pin, "segment": {}}}, "override", "segment"),
        ({"kind": "override", "override": {**pin, "label": "tone:nope"}}, "override", "label"),
        ({"kind": "guardrail", "guardrail": cap}, "guardrail", "period"),
        ({"kind": "guardrail"}, "guardrail", None),
        ({"kind": "boost", "label": playful.pk}, "boost", None),
        ({"kind": "campaign"}, "kind", None),
    ):
        refused = post(wrong)
        assert refused.status_code == 400, (wrong, refused.json())
        assert where in refused.json()
        if field:
            assert field in refused.json()[where], refused.json()

    guardrail = post({"kind": "guardrail", "guardrail": {**cap, "period": "day"}, "sample": 100})
    assert guardrail.status_code == 200 and guardrail.json()["changed"] > 0
    boost = post({"kind": "boost", "label": playful.pk, "boost": 1.0, "sample": 100})
    assert boost.status_code == 200 and boost.json()["prompts"]["rendered"] == 100

    saved = override_create(
        workspace=workspace, actor=ACTOR, segment=GOLD, label=playful, action="raise", value=1.0
    )
    edited = post({"kind": "override", "id": saved.pk, "override": {"value": 0.0, "action": "pin"}})
    assert edited.status_code == 200 and edited.json()["change"]["id"] == saved.pk
    _, theirs = api_key_create(workspace=other_workspace, scopes=["read"])
    assert post({"kind": "override", "id": saved.pk, "override": pin}, theirs).status_code == 404
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/effect-preview" in schema and "EffectPreviewRequest" in schema


def test_the_forms_preview_before_saving(member_client, workspace, playful):
    page = member_client.get(reverse("override-new")).content.decode()
    assert 'id="preview-effect"' in page and "js/effect_preview.js" in page
    assert 'id="preview-effect"' in member_client.get(reverse("guardrail-new")).content.decode()
    form = {"segment": '{"all": [{"trait": "plan", "equals": "gold"}]}', "label": playful.pk}
    answer = member_client.post(
        reverse("override-new-preview"), form | {"action": "pin", "value": "0"}
    )
    assert answer.status_code == 200 and answer.json()["excluded"]["customers"] > 0
    refused = member_client.post(reverse("override-new-preview"), form | {"action": "pin"})
    assert refused.status_code == 400 and "value" in refused.json()["errors"]
    capped = member_client.post(
        reverse("guardrail-new-preview"),
        {
            "name": "No playful",
            "kind": "frequency_cap",
            "label": playful.pk,
            "limit": 0,
            "period": "day",
        },
    )
    assert capped.status_code == 200 and capped.json()["changed"] > 0
    # Nothing was saved.
    assert not Override.objects.for_workspace(workspace).exists()
    assert not Guardrail.objects.for_workspace(workspace).exists()
