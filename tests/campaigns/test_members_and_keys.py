"""Members and API keys: owners add, change and remove members (never the last owner) and create
and revoke keys, in the browser or with an admin key; a key never mints a stronger key."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from campaigns.models import ApiKey, AuditEntry, Membership
from campaigns.tenancy.changes import Actor
from campaigns.tenancy.services import (
    api_key_authenticate,
    api_key_issue,
    member_add,
    member_remove,
    member_role_change,
)
from tests.campaigns.config_support import api


def membership_of(workspace, user) -> Membership:
    return Membership.objects.for_workspace(workspace).get(user=user)


# Services --------------------------------------------------------------------------------------


def test_it_adds_an_existing_user_and_audits_it(workspace, owner, make_user):
    make_user("newbie")
    added = member_add(
        workspace=workspace, actor=Actor.of_user(owner), username="newbie", role="editor"
    )
    assert added.role == "editor"
    entry = AuditEntry.objects.for_workspace(workspace).get(object_type="membership")
    assert (entry.action, entry.object_repr, entry.after) == (
        "create",
        "member newbie",
        {"role": "editor"},
    )
    with pytest.raises(ValidationError) as refused:
        member_add(workspace=workspace, actor=Actor.system(), username="ghost", role="viewer")
    assert "username" in refused.value.message_dict
    with pytest.raises(ValidationError, match="already a member"):
        member_add(workspace=workspace, actor=Actor.system(), username="newbie", role="viewer")


def test_it_never_removes_or_demotes_the_last_owner(workspace, owner, make_user):
    only = membership_of(workspace, owner)
    with pytest.raises(ValidationError, match="needs an owner"):
        member_role_change(
            workspace=workspace, actor=Actor.system(), membership=only, role="editor"
        )
    with pytest.raises(ValidationError, match="needs an owner"):
        member_remove(workspace=workspace, actor=Actor.system(), membership=only)
    second = make_user("sam", workspace=workspace, role="owner")
    member_role_change(workspace=workspace, actor=Actor.system(), membership=only, role="viewer")
    member_remove(
        workspace=workspace, actor=Actor.system(), membership=membership_of(workspace, owner)
    )
    assert list(Membership.objects.for_workspace(workspace).values_list("user", flat=True)) == [
        second.pk
    ]
    actions = AuditEntry.objects.for_workspace(workspace).values_list("action", flat=True)
    assert sorted(actions) == ["delete", "update"]


def test_it_lets_only_owners_grant_admin_and_keys_only_what_they_hold(workspace, owner, member):
    api_key, secret = api_key_issue(
        workspace=workspace, actor=Actor.of_user(owner), scopes=["admin", "read"], name="ops"
    )
    assert api_key_authenticate(raw_key=secret) == api_key and api_key.created_by == owner
    with pytest.raises(ValidationError, match="Only an owner"):
        api_key_issue(workspace=workspace, actor=Actor.of_user(member), scopes=["read"])
    as_key = Actor.of_api_key(api_key)
    with pytest.raises(ValidationError, match="not over the API"):
        api_key_issue(workspace=workspace, actor=as_key, scopes=["admin"])
    with pytest.raises(ValidationError, match=r"does not hold itself: \['write'\]"):
        api_key_issue(workspace=workspace, actor=as_key, scopes=["read", "write"])
    weaker, _ = api_key_issue(workspace=workspace, actor=as_key, scopes=["read"], name="bi")
    assert weaker.scopes == ["read"] and weaker.created_by is None
    entry = AuditEntry.objects.for_workspace(workspace).filter(object_type="apikey").first()
    assert entry.actor.startswith("API key ops") and entry.after["scopes"] == ["read"]


# Pages -----------------------------------------------------------------------------------------


def test_it_manages_members_from_the_page(owner_client, workspace, make_user):
    newbie = make_user("newbie")
    url = reverse("members")
    response = owner_client.post(url, {"action": "add", "username": "newbie", "role": "viewer"})
    assert response.status_code == 302
    membership = membership_of(workspace, newbie)
    owner_client.post(url, {"action": "role", "membership": membership.pk, "role": "editor"})
    assert membership_of(workspace, newbie).role == "editor"
    owner_client.post(url, {"action": "remove", "membership": membership.pk})
    assert not Membership.objects.for_workspace(workspace).filter(user=newbie).exists()
    page = owner_client.post(url, {"action": "add", "username": "ghost", "role": "viewer"})
    assert 'id="field-username"' in page.content.decode() and "No user" in page.content.decode()


def test_it_refuses_to_demote_the_last_owner_from_the_page(owner_client, workspace, owner):
    membership = membership_of(workspace, owner)
    response = owner_client.post(
        reverse("members"),
        {"action": "role", "membership": membership.pk, "role": "viewer"},
        follow=True,
    )
    assert "needs an owner" in response.content.decode()
    assert membership_of(workspace, owner).role == "owner"


def test_it_shows_a_new_keys_secret_once_with_a_copy_button(owner_client, workspace):
    response = owner_client.post(
        reverse("api-keys"), {"action": "create", "name": "crm", "scopes": ["read", "admin"]}
    )
    page = response.content.decode()
    api_key = ApiKey.objects.for_workspace(workspace).get(name="crm")
    secret = page.split('id="new-key-secret">')[1].split("<")[0]
    assert api_key_authenticate(raw_key=secret) == api_key
    assert 'data-copy="new-key-secret"' in page and "js/copy.js" in page
    again = owner_client.get(reverse("api-keys")).content.decode()
    assert secret not in again and api_key.prefix in again
    owner_client.post(reverse("api-keys"), {"action": "revoke", "key": api_key.pk})
    assert api_key_authenticate(raw_key=secret) is None


def test_it_shows_editors_and_viewers_no_controls_and_refuses_their_posts(
    client, member, viewer, workspace
):
    for user in (member, viewer):
        client.force_login(user)
        members_page = client.get(reverse("members")).content.decode()
        keys_page = client.get(reverse("api-keys")).content.decode()
        assert 'id="member-add-form"' not in members_page and "Remove" not in members_page
        assert 'id="key-form"' not in keys_page
        add = {"action": "add", "username": user.username, "role": "owner"}
        assert client.post(reverse("members"), add).status_code == 403
        create = {"action": "create", "scopes": ["admin"]}
        assert client.post(reverse("api-keys"), create).status_code == 403
    assert not ApiKey.objects.for_workspace(workspace).exists()
    assert membership_of(workspace, member).role == "editor"


# API -------------------------------------------------------------------------------------------


def test_it_manages_members_with_an_admin_key(client, admin_key, workspace, owner, make_user):
    make_user("newbie")
    created = api(
        client, "post", "/api/v1/members", admin_key, {"username": "newbie", "role": "viewer"}
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert api(client, "get", f"/api/v1/members/{pk}", admin_key).json()["username"] == "newbie"
    changed = api(client, "patch", f"/api/v1/members/{pk}", admin_key, {"role": "editor"})
    assert changed.json()["role"] == "editor"
    bad = api(client, "patch", f"/api/v1/members/{pk}", admin_key, {"role": "king"})
    assert bad.status_code == 400 and "role" in bad.json()
    last = membership_of(workspace, owner).pk
    refused = api(client, "delete", f"/api/v1/members/{last}", admin_key)
    assert refused.status_code == 400 and "needs an owner" in str(refused.json())
    assert api(client, "delete", f"/api/v1/members/{pk}", admin_key).status_code == 204
    listed = api(client, "get", "/api/v1/members", admin_key).json()["results"]
    assert [m["username"] for m in listed] == ["olivia"]


def test_it_needs_the_admin_scope_and_hides_other_workspaces(
    client, config_key, their_config_key, workspace, owner
):
    assert api(client, "get", "/api/v1/members", config_key).status_code == 403
    assert api(client, "get", "/api/v1/api-keys", config_key).status_code == 403
    pk = membership_of(workspace, owner).pk
    assert api(client, "get", f"/api/v1/members/{pk}", their_config_key).status_code == 404
    assert api(client, "delete", f"/api/v1/members/{pk}", their_config_key).status_code == 404


def test_it_creates_and_revokes_keys_but_never_stronger_ones(client, admin_key, workspace):
    created = api(client, "post", "/api/v1/api-keys", admin_key, {"name": "bi", "scopes": ["read"]})
    assert created.status_code == 201, created.content
    body = created.json()
    assert api_key_authenticate(raw_key=body["secret"]).pk == body["id"]
    shown = api(client, "get", f"/api/v1/api-keys/{body['id']}", admin_key).json()
    assert "secret" not in shown and shown["prefix"] == body["prefix"]
    for scopes in (["admin"], ["read", "config"], ["superpowers"], []):
        refused = api(client, "post", "/api/v1/api-keys", admin_key, {"scopes": scopes})
        assert refused.status_code == 400 and "scopes" in refused.json(), scopes
    revoked = api(client, "delete", f"/api/v1/api-keys/{body['id']}", admin_key)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert api_key_authenticate(raw_key=body["secret"]) is None
    assert ApiKey.objects.for_workspace(workspace).count() == 2


def test_it_lets_a_session_owner_but_not_an_editor_manage_keys(client, owner, member, workspace):
    client.force_login(member)
    assert api(client, "get", "/api/v1/api-keys").status_code == 403
    client.force_login(owner)
    created = api(client, "post", "/api/v1/api-keys", data={"scopes": ["admin", "read"]})
    assert created.status_code == 201
    assert created.json()["created_by"] == "olivia"
