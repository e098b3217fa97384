"""The guardrails and overrides API: scopes, validation by field, audit, workspaces apart."""

import pytest

from campaigns.models import AuditEntry, Guardrail, Override
from campaigns.tenancy.services import api_key_create
from tests.campaigns.config_support import api

CAP = {
    "name": "At most 2 discount messages a week",
    "kind": "frequency_cap",
    "label": "value_proposition:discount",
    "limit": 2,
    "period": "week",
}


@pytest.fixture
def read_key(workspace):
    return api_key_create(workspace=workspace, scopes=["read"], name="reader")[1]


def test_it_creates_a_cap_audited_as_the_key(client, workspace, strategy_catalogue, config_key):
    response = api(client, "post", "/api/v1/guardrails", config_key, CAP)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["label"] == "value_proposition:discount" and body["limit"] == 2
    assert body["created_by"] == "API key crm sync (" + config_key[:12] + "…)"
    entry = AuditEntry.objects.for_workspace(workspace).get(object_type="guardrail")
    assert entry.action == "create" and entry.after["limit"] == 2
    assert entry.actor.startswith("API key crm sync")


def test_a_read_key_reads_but_cannot_write(client, workspace, strategy_catalogue, read_key):
    assert api(client, "get", "/api/v1/guardrails", read_key).status_code == 200
    assert api(client, "post", "/api/v1/guardrails", read_key, CAP).status_code == 403
    assert api(client, "post", "/api/v1/overrides", read_key, {}).status_code == 403
    assert not Guardrail.objects.for_workspace(workspace).exists()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**CAP, "period": ""}, "period", "day or week"),
        ({**CAP, "limit": None}, "limit", "most sends"),
        ({**CAP, "label": "value_proposition:nope"}, "label", "No label"),
        (
            {**CAP, "kind": "eligibility", "audience": {"all": []}},
            "message",
            "message or a campaign",
        ),
        (
            {
                "name": "Pro",
                "kind": "eligibility",
                "message": "hurry",
                "audience": {"all": [{"trait": "tier", "equals": 1}]},
            },
            "audience",
            "no customer has a trait 'tier'",
        ),
        ({"name": "Wait", "kind": "after_event", "hours": 24}, "event_name", "Name the event"),
        (
            {"name": "Night", "kind": "quiet_hours", "quiet_start": "21:00", "quiet_end": "21:00"},
            "quiet_end",
            "another time",
        ),
        ({"name": "Night", "kind": "quiet_hours", "quiet_start": "25:00"}, "quiet_start", ""),
    ],
)
def test_it_refuses_a_bad_guardrail_naming_the_field(
    client, strategy_catalogue, config_key, body, field, words
):
    response = api(client, "post", "/api/v1/guardrails", config_key, body)
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert words in " ".join(errors[field])


def test_it_pins_a_label_for_a_segment_and_archives_it(
    client, workspace, strategy_catalogue, config_key
):
    body = {
        "segment": {"all": [{"trait": "plan", "equals": "pro"}]},
        "label": "value_proposition:urgency",
        "action": "pin",
        "value": 0,
        "note": "pros hate pressure",
    }
    created = api(client, "post", "/api/v1/overrides", config_key, body)
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert created.json()["customer"] == "" and created.json()["value"] == 0
    archived = api(client, "delete", f"/api/v1/overrides/{pk}", config_key)
    assert archived.status_code == 200 and archived.json()["active"] is False
    restored = api(client, "patch", f"/api/v1/overrides/{pk}", config_key, {"active": True})
    assert restored.json()["active"] is True
    actions = list(
        AuditEntry.objects.for_workspace(workspace)
        .filter(object_type="override")
        .order_by("at", "id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "archive", "restore"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"customer": "c-1", "label": "value_proposition:urgency", "action": "pin"},
            "value",
            "0 (never)",
        ),
        (
            {
                "customer": "c-1",
                "label": "value_proposition:urgency",
                "action": "raise",
                "value": 0,
            },
            "value",
            "above 0",
        ),
        (
            {
                "customer": "c-1",
                "label": "value_proposition:urgency",
                "action": "pin",
                "value": 1.5,
            },
            "value",
            "0 (never) to 1",
        ),
        (
            {"customer": "nobody", "label": "value_proposition:urgency", "action": "forget"},
            "customer",
            "No customer",
        ),
        ({"label": "value_proposition:urgency", "action": "forget"}, "segment", "boost"),
        ({"customer": "c-1", "label": "urgency", "action": "forget"}, "label", "set:label"),
        # A NUL character is refused as such, before any lookup (the database cannot take it).
        ({"customer": "c-1", "label": "value_\u0000x:u", "action": "pin"}, "label", "Null"),
        (
            {
                "customer": "c-1",
                "label": "value_proposition:urgency",
                "action": "forget",
                "expires_at": "2000-01-01T00:00:00Z",
            },
            "expires_at",
            "already past",
        ),
    ],
)
def test_it_refuses_a_bad_override_naming_the_field(
    client, strategy_catalogue, config_key, body, field, words
):
    response = api(client, "post", "/api/v1/overrides", config_key, body)
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert words in " ".join(errors[field])


def test_another_workspaces_objects_answer_404(
    client, workspace, strategy_catalogue, config_key, their_config_key
):
    guardrail = api(client, "post", "/api/v1/guardrails", config_key, CAP).json()["id"]
    override = api(
        client,
        "post",
        "/api/v1/overrides",
        config_key,
        {"customer": "c-1", "label": "value_proposition:urgency", "action": "forget"},
    ).json()["id"]
    for url in (f"/api/v1/guardrails/{guardrail}", f"/api/v1/overrides/{override}"):
        assert api(client, "get", url, their_config_key).status_code == 404
        assert api(client, "patch", url, their_config_key, {"note": "x"}).status_code == 404
        assert api(client, "delete", url, their_config_key).status_code == 404
    # Their key cannot name our label either.
    theirs = api(client, "post", "/api/v1/guardrails", their_config_key, CAP)
    assert theirs.status_code == 400 and "label" in theirs.json()
    assert Guardrail.objects.for_workspace(workspace).get().active


def test_a_stale_version_is_a_409(client, strategy_catalogue, config_key):
    pk = api(client, "post", "/api/v1/guardrails", config_key, CAP).json()["id"]
    assert (
        api(
            client, "patch", f"/api/v1/guardrails/{pk}", config_key, {"limit": 3, "version": 1}
        ).status_code
        == 200
    )
    stale = api(client, "patch", f"/api/v1/guardrails/{pk}", config_key, {"limit": 4, "version": 1})
    assert stale.status_code == 409


def test_a_kind_keeps_only_its_own_fields(client, workspace, strategy_catalogue, config_key):
    body = {**CAP, "event_name": "Order Completed", "hours": 5, "message": "spring"}
    pk = api(client, "post", "/api/v1/guardrails", config_key, body).json()["id"]
    stored = Guardrail.objects.for_workspace(workspace).get(pk=pk)
    assert (stored.event_name, stored.hours, stored.message_id) == ("", None, None)


def test_an_override_change_makes_the_editor_its_author(
    client, workspace, strategy_catalogue, config_key
):
    other = api_key_create(workspace=workspace, scopes=["read", "config"], name="second")[1]
    pk = api(
        client,
        "post",
        "/api/v1/overrides",
        config_key,
        {"customer": "c-1", "label": "value_proposition:urgency", "action": "raise", "value": 0.5},
    ).json()["id"]
    api(client, "patch", f"/api/v1/overrides/{pk}", other, {"value": 0.8})
    assert (
        Override.objects.for_workspace(workspace).get(pk=pk).created_by.startswith("API key second")
    )
