"""Every configuration change is versioned and audited in its own transaction."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import AuditEntry, Label, LabelSet
from campaigns.tenancy.changes import (
    Actor,
    StaleEdit,
    change_archive,
    change_create,
    change_update,
)
from campaigns.tenancy.services import api_key_create

AUDITED = ["name", "prompt_phrase", "boost", "active"]


@pytest.fixture
def label(workspace):
    value_propositions = LabelSet.objects.for_workspace(workspace).get(slug="value_proposition")
    return change_create(
        workspace=workspace,
        actor=Actor.system("test"),
        obj=Label(workspace=workspace, label_set=value_propositions, slug="discount", name="Disc"),
        audited=AUDITED,
    )


def test_it_audits_a_creation_with_the_fields_after(workspace, label):
    entry = AuditEntry.objects.for_workspace(workspace).get()
    assert (entry.action, entry.object_type, entry.actor) == ("create", "label", "test")
    assert entry.before is None and entry.after["name"] == "Disc"


def test_it_bumps_the_version_and_records_before_and_after(workspace, label, member):
    changed = change_update(
        workspace=workspace,
        actor=Actor.of_user(member),
        obj=label,
        changes={"boost": 0.3},
        expected_version=1,
        audited=AUDITED,
    )
    assert changed.version == 2
    entry = AuditEntry.objects.for_workspace(workspace).first()
    assert entry.user == member and entry.actor == member.username
    assert entry.changed_fields() == [("boost", 0.0, 0.3)]


def test_it_refuses_a_stale_edit_and_keeps_what_was_stored(workspace, label):
    actor = Actor.system()
    change_update(
        workspace=workspace,
        actor=actor,
        obj=label,
        changes={"name": "A"},
        expected_version=1,
        audited=AUDITED,
    )
    with pytest.raises(StaleEdit, match="changed by someone else"):
        change_update(
            workspace=workspace,
            actor=actor,
            obj=label,
            changes={"name": "B"},
            expected_version=1,
            audited=AUDITED,
        )
    label.refresh_from_db()
    assert (label.name, label.version) == ("A", 2)


def test_it_saves_nothing_when_validation_fails(workspace, label):
    with pytest.raises(ValidationError) as error:
        change_update(
            workspace=workspace,
            actor=Actor.system(),
            obj=label,
            changes={"boost": 3.0},
            expected_version=1,
            audited=AUDITED,
        )
    assert "boost" in error.value.message_dict
    label.refresh_from_db()
    assert (label.boost, label.version) == (0.0, 1)
    assert AuditEntry.objects.for_workspace(workspace).count() == 1  # the creation only


def test_it_names_the_api_key_and_records_archive_and_restore(workspace, label):
    api_key, _ = api_key_create(workspace=workspace, scopes=["config"], name="crm sync")
    actor = Actor.of_api_key(api_key)
    archived = change_archive(workspace=workspace, actor=actor, obj=label, active=False)
    change_archive(workspace=workspace, actor=actor, obj=archived, active=True)
    actions = list(
        AuditEntry.objects.for_workspace(workspace).values_list("action", "actor", "api_key")
    )
    assert actions[:2] == [
        ("restore", f"API key crm sync ({api_key.prefix}…)", api_key.pk),
        ("archive", f"API key crm sync ({api_key.prefix}…)", api_key.pk),
    ]


def test_it_records_no_entry_when_nothing_changed(workspace, label):
    change_update(
        workspace=workspace,
        actor=Actor.system(),
        obj=label,
        changes={"name": "Disc"},
        expected_version=None,
        audited=AUDITED,
    )
    assert AuditEntry.objects.for_workspace(workspace).count() == 1
