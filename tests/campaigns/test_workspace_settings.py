"""Workspace settings: editors and owners change them (page and API), versioned and audited; a
change the stored memory was computed by marks it stale until a recompute; pages show the
workspace's time."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from campaigns.models import AuditEntry, Workspace
from campaigns.tenancy.changes import Actor, StaleEdit
from campaigns.tenancy.services import (
    SETTINGS_FIELDS,
    api_key_create,
    workspace_settings_update,
)
from memory.models import RecomputeRun
from memory.staleness import memory_stale_settings
from tests.campaigns.config_support import api


def form_data(workspace, **changes) -> dict:
    return (
        {name: getattr(workspace, name) for name in SETTINGS_FIELDS}
        | {"version": workspace.version}
        | changes
    )


@pytest.fixture
def computed(workspace):
    """A workspace whose memory was computed before any change."""
    RecomputeRun.objects.create(
        workspace=workspace,
        status=RecomputeRun.Status.SUCCEEDED,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return workspace


def test_it_changes_settings_audited_and_refuses_a_stale_edit(workspace, owner):
    saved = workspace_settings_update(
        workspace=workspace,
        actor=Actor.of_user(owner),
        expected_version=1,
        changes={"attribution_window_h": 48.0, "name": " Acme Coffee "},
    )
    assert (saved.version, saved.name, saved.attribution_window_h) == (2, "Acme Coffee", 48.0)
    entry = AuditEntry.objects.for_workspace(workspace).get(object_type="workspace")
    assert entry.before["attribution_window_h"] == 72.0 and entry.actor == "olivia"
    with pytest.raises(StaleEdit):
        workspace_settings_update(
            workspace=workspace, actor=Actor.system(), expected_version=1, changes={"name": "X"}
        )
    with pytest.raises(ValidationError) as refused:
        workspace_settings_update(
            workspace=saved,
            actor=Actor.system(),
            expected_version=2,
            changes={"time_zone": "Mars/Olympus"},
        )
    assert "time_zone" in refused.value.message_dict
    assert Workspace.objects.get(pk=workspace.pk).time_zone == "UTC"


def test_it_says_the_memory_is_stale_until_a_recompute(computed):
    assert memory_stale_settings(workspace=computed) == []
    workspace_settings_update(
        workspace=computed,
        actor=Actor.system(),
        expected_version=None,
        changes={"attribution_window_h": 24.0, "name": "Renamed"},
    )
    stale = memory_stale_settings(workspace=computed)
    assert [(s.field, s.before, s.after) for s in stale] == [("attribution_window_h", 72.0, 24.0)]
    RecomputeRun.objects.create(workspace=computed, status=RecomputeRun.Status.QUEUED)
    assert memory_stale_settings(workspace=computed) == []


def test_it_forgets_a_change_made_and_undone(computed):
    for window in (24.0, 72.0):
        workspace_settings_update(
            workspace=computed,
            actor=Actor.system(),
            expected_version=None,
            changes={"attribution_window_h": window},
        )
    assert memory_stale_settings(workspace=computed) == []


def test_it_saves_the_form_and_offers_a_recompute(owner_client, computed):
    response = owner_client.post(
        reverse("workspace-settings"), form_data(computed, priming_horizon_h=24)
    )
    assert response.status_code == 302
    page = owner_client.get(reverse("workspace-settings")).content.decode()
    assert 'id="stale-memory"' in page and "priming_horizon_h changed from 72.0 to 24.0" in page
    assert f'action="{reverse("memory-recompute")}"' in page


def test_it_shows_field_errors_and_a_stale_form(owner_client, workspace):
    page = owner_client.post(
        reverse("workspace-settings"), form_data(workspace, time_zone="Nowhere/Land")
    ).content.decode()
    assert 'id="field-time_zone"' in page and "Select a valid choice" in page
    workspace_settings_update(
        workspace=workspace, actor=Actor.system(), expected_version=None, changes={"name": "B"}
    )
    stale = owner_client.post(reverse("workspace-settings"), form_data(workspace, name="Mine"))
    assert stale.status_code == 200 and "changed by someone else" in stale.content.decode()
    assert Workspace.objects.get(pk=workspace.pk).name == "B"


def test_it_lets_editors_but_not_viewers_change_settings(client, member, viewer, workspace):
    client.force_login(viewer)
    page = client.get(reverse("workspace-settings")).content.decode()
    assert 'id="settings-form"' not in page and "editors and owners change them" in page
    refused = client.post(reverse("workspace-settings"), form_data(workspace, name="X"))
    assert refused.status_code == 403
    assert Workspace.objects.get(pk=workspace.pk).name == "Acme"
    client.force_login(member)  # an editor
    assert 'id="settings-form"' in client.get(reverse("workspace-settings")).content.decode()
    saved = client.post(reverse("workspace-settings"), form_data(workspace, name="Edited"))
    assert saved.status_code == 302
    assert Workspace.objects.get(pk=workspace.pk).name == "Edited"


def test_it_shows_page_times_in_the_workspaces_time_zone(owner_client, workspace, owner):
    api_key, _ = api_key_create(workspace=workspace, scopes=["read"], name="tz")
    api_key.created_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    api_key.save()
    assert "2026-03-01 12:00 UTC" in owner_client.get(reverse("api-keys")).content.decode()
    workspace_settings_update(
        workspace=workspace,
        actor=Actor.system(),
        expected_version=None,
        changes={"time_zone": "Asia/Tokyo"},
    )
    assert "2026-03-01 21:00 JST" in owner_client.get(reverse("api-keys")).content.decode()
    # The API answers in UTC whoever asks.
    listed = api(owner_client, "get", "/api/v1/api-keys").json()["results"]
    assert listed[0]["created_at"] == "2026-03-01T12:00:00Z"


def test_it_reads_and_patches_the_workspace_over_the_api(client, config_key, read_key, computed):
    read = api(client, "get", "/api/v1/workspace", read_key)
    assert read.status_code == 200 and read.json()["goal_event"] == "Order Completed"
    assert read.json()["memory_stale"] == []
    assert api(client, "patch", "/api/v1/workspace", read_key, {"name": "X"}).status_code == 403
    patched = api(
        client, "patch", "/api/v1/workspace", config_key, {"send_event": "Sent", "version": 1}
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["memory_stale"] == ["send_event"]
    stale = api(client, "patch", "/api/v1/workspace", config_key, {"name": "Y", "version": 1})
    assert stale.status_code == 409
    bad = api(client, "patch", "/api/v1/workspace", config_key, {"time_zone": "Mars/Base"})
    assert bad.status_code == 400 and "time_zone" in bad.json()
    negative = api(client, "patch", "/api/v1/workspace", config_key, {"attribution_window_h": 0})
    assert negative.status_code == 400 and "attribution_window_h" in negative.json()
    entry = AuditEntry.objects.for_workspace(computed).get(object_type="workspace")
    assert entry.actor.startswith("API key crm sync")


def test_it_lets_session_editors_but_not_viewers_patch(client, member, viewer, workspace):
    client.force_login(viewer)
    assert api(client, "patch", "/api/v1/workspace", data={"name": "V"}).status_code == 403
    client.force_login(member)
    assert api(client, "patch", "/api/v1/workspace", data={"name": "E"}).status_code == 200


def test_it_answers_each_key_with_its_own_workspace(client, their_config_key, other_workspace):
    answer = api(client, "get", "/api/v1/workspace", their_config_key).json()
    assert answer["slug"] == "globex"
