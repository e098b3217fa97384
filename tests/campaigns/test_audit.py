"""The audit timeline (page and API) and the changes between two times."""

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import AuditEntry, Label, LabelSet, Membership
from campaigns.tenancy.audit_selectors import audit_between, audit_page
from campaigns.tenancy.changes import (
    Actor,
    audit_record,
    change_archive,
    change_create,
    change_update,
)
from campaigns.tenancy.services import api_key_create

pytestmark = pytest.mark.django_db

AUDITED = ["name", "prompt_phrase", "boost", "active"]


def label_in(workspace, slug: str, actor: Actor) -> Label:
    label_set = LabelSet.objects.for_workspace(workspace).get(slug="value_proposition")
    label = Label(workspace=workspace, label_set=label_set, slug=slug, name=slug.capitalize())
    return change_create(workspace=workspace, actor=actor, obj=label, audited=AUDITED)


def boost(workspace, label: Label, actor: Actor, value: float) -> Label:
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=label,
        changes={"boost": value},
        expected_version=label.version,
        audited=AUDITED,
    )


def boosts_recorded(workspace, count: int) -> list[AuditEntry]:
    """Record `count` boost changes of labels label-00, label-01, …, as a bulk job would."""
    return [
        audit_record(
            workspace=workspace,
            actor=Actor.system(),
            action=AuditEntry.Action.UPDATE,
            object_type="label",
            object_id=str(number),
            object_repr=f"label-{number:02d}",
            before={"boost": 0},
            after={"boost": number},
        )
        for number in range(count)
    ]


@pytest.fixture
def history(workspace, other_workspace, member):
    """A label created by the system, boosted by the member, archived by an API key."""
    key, _ = api_key_create(workspace=workspace, scopes=["config"], name="ci")
    discount = label_in(workspace, "discount", Actor.system("import_config"))
    discount = boost(workspace, discount, Actor.of_user(member), 0.3)
    change_archive(workspace=workspace, actor=Actor.of_api_key(key), obj=discount, active=False)
    secret = label_in(other_workspace, "secret", Actor.system())
    boost(other_workspace, secret, Actor.system(), 0.9)
    return key


def test_it_shows_every_change_newest_first_with_before_and_after(member_client, history):
    page = member_client.get(reverse("audit")).content.decode()

    archived, boosted, created = (page.index(word) for word in ("Archived", "Changed", "Created"))
    assert archived < boosted < created
    assert "<code>boost</code> 0 → 0.3" in page
    assert "<code>active</code> yes → no" in page
    assert f"API key ci ({history.prefix}…)" in page and "marketer" in page
    assert "secret" not in page and "0.9" not in page


def test_it_filters_by_object_type_and_actor(member_client, workspace, history):
    audit_record(
        workspace=workspace,
        actor=Actor.system(),
        action=AuditEntry.Action.UPDATE,
        object_type="workspace",
        object_id=str(workspace.pk),
        object_repr="Acme",
        before={"attribution_window_h": 72},
        after={"attribution_window_h": 48},
    )

    by_type = member_client.get(reverse("audit"), {"type": "workspace"}).content.decode()
    by_actor = member_client.get(reverse("audit"), {"actor": "marketer"}).content.decode()

    assert "attribution_window_h" in by_type and "discount" not in by_type
    assert "<code>boost</code> 0 → 0.3" in by_actor
    assert "Archived" not in by_actor and "Created" not in by_actor


def test_it_pages_through_the_timeline_by_keyset(member_client, workspace):
    at = timezone.now()
    for number, entry in enumerate(boosts_recorded(workspace, 55)):
        # Half share one instant: the keyset must break ties by id, not skip or repeat.
        AuditEntry.objects.for_workspace(workspace).filter(pk=entry.pk).update(
            at=at if number % 2 else at - timedelta(seconds=number)
        )

    first = audit_page(workspace=workspace)
    second = audit_page(workspace=workspace, after=first.next_after)

    shown = [row.entry.object_repr for row in first.rows + second.rows]
    assert len(first.rows) == 50 and len(second.rows) == 5 and second.next_after == ""
    assert sorted(shown) == [f"label-{number:02d}" for number in range(55)]
    page = member_client.get(reverse("audit")).content.decode()
    assert "Older changes" in page
    assert member_client.get(reverse("audit"), {"after": "yesterday"}).status_code == 400


def test_it_shows_the_timeline_to_viewers_of_the_workspace_only(
    client, make_user, workspace, other_workspace, history
):
    viewer = make_user("reader", workspace=workspace, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    outsider = Client()
    outsider.force_login(make_user("outsider", workspace=other_workspace))

    assert "discount" in client.get(reverse("audit")).content.decode()
    assert "discount" not in outsider.get(reverse("audit")).content.decode()


def test_it_returns_the_changes_between_two_runs_oldest_first(workspace, member):
    discount = label_in(workspace, "discount", Actor.system())
    start = timezone.now()
    discount = boost(workspace, discount, Actor.of_user(member), 0.3)
    boost(workspace, discount, Actor.of_user(member), 0.5)
    end = timezone.now()
    label_in(workspace, "later", Actor.system())

    changes = audit_between(workspace=workspace, start=start, end=end)

    assert [row.summary for row in changes] == [
        "boost of value_proposition:discount 0 → 0.3",
        "boost of value_proposition:discount 0.3 → 0.5",
    ]
    marked = render_to_string("memory/_changes_between_runs.html", {"changes": changes})
    assert "boost of value_proposition:discount 0 → 0.3" in marked and "(marketer)" in marked
    assert len(audit_between(workspace=workspace, start=None, end=end)) == 3


# --- API --------------------------------------------------------------------------------------


def get(client, raw_key: str, path: str, **params):
    return client.get(path, params, HTTP_AUTHORIZATION=f"Bearer {raw_key}")


def test_it_lists_the_workspaces_changes_over_the_api(client, workspace, read_key, history):
    listed = get(client, read_key, "/api/v1/audit").json()

    rows = listed["results"]
    assert [row["action"] for row in rows] == ["archive", "update", "create"]
    assert rows[1]["actor"] == "marketer"
    assert rows[1]["changes"] == [{"field": "boost", "before": 0.0, "after": 0.3}]
    assert rows[0]["actor"] == f"API key ci ({history.prefix}…)"
    assert {row["object_repr"] for row in rows} == {"value_proposition:discount"}


def test_it_filters_the_api_by_type_actor_object_and_time(client, workspace, read_key, history):
    boosted = AuditEntry.objects.for_workspace(workspace).get(action="update")

    by_actor = get(client, read_key, "/api/v1/audit", actor="marketer").json()["results"]
    by_type = get(client, read_key, "/api/v1/audit", object_type="workspace").json()["results"]
    since = get(client, read_key, "/api/v1/audit", since=boosted.at.isoformat()).json()
    bad = get(client, read_key, "/api/v1/audit", since="last tuesday")

    assert [row["id"] for row in by_actor] == [boosted.pk]
    assert by_type == []
    assert [row["action"] for row in since["results"]] == ["archive"]
    assert bad.status_code == 400 and "since" in bad.json()


def test_it_pages_the_api_with_a_cursor(client, workspace, read_key):
    boosts_recorded(workspace, 105)

    first = get(client, read_key, "/api/v1/audit").json()
    second = client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {read_key}").json()

    ids = [row["id"] for row in first["results"] + second["results"]]
    assert len(first["results"]) == 100 and len(ids) == len(set(ids)) == 105
    assert second["next"] is None


def test_it_keeps_other_workspaces_changes_and_scopes_out(
    client, workspace, other_workspace, read_key, write_key, history
):
    theirs = AuditEntry.objects.for_workspace(other_workspace).first()

    assert get(client, read_key, f"/api/v1/audit/{theirs.pk}").status_code == 404
    assert all(
        "secret" not in row["object_repr"]
        for row in get(client, read_key, "/api/v1/audit").json()["results"]
    )
    assert get(client, write_key, "/api/v1/audit").status_code == 403
    mine = AuditEntry.objects.for_workspace(workspace).first()
    assert get(client, read_key, f"/api/v1/audit/{mine.pk}").json()["id"] == mine.pk
