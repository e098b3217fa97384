"""The catalogue services: label sets, labels and messages, validated, versioned and audited."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.catalogue.labels import (
    label_archive,
    label_set_create,
    label_set_update,
    label_update,
)
from campaigns.catalogue.messages import (
    labels_resolve,
    message_archive,
    message_create,
    message_update,
)
from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import AuditEntry, LabelSet, Message
from campaigns.tenancy.changes import Actor, StaleEdit
from campaigns.tenancy.services import api_key_create
from tests.campaigns.catalogue_support import SYSTEM, make_label, make_message


@pytest.fixture
def taxonomy(workspace):
    make_label(workspace, "discount", prompt_phrase="discounts")
    make_label(workspace, "convenience")
    make_label(workspace, "email", set_slug="channel")
    make_label(workspace, "web", set_slug="channel")
    return workspace


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


def test_it_refuses_a_duplicate_label_slug_in_a_set_as_a_field_error(taxonomy):
    with pytest.raises(ValidationError) as excinfo:
        make_label(taxonomy, "discount")
    assert "already taken" in errors_of(excinfo)["slug"][0]


def test_it_allows_the_same_label_slug_in_another_set(taxonomy):
    assert make_label(taxonomy, "discount", set_slug="tone").label_set.slug == "tone"


def test_it_refuses_a_duplicate_label_set_slug(taxonomy):
    with pytest.raises(ValidationError) as excinfo:
        label_set_create(workspace=taxonomy, actor=SYSTEM, slug="tone", name="Tone again")
    assert "slug" in errors_of(excinfo)


def test_it_renames_a_label_and_keeps_its_slug(taxonomy, member):
    label = make_label(taxonomy, "fast")
    with pytest.raises(ValidationError) as excinfo:
        label_update(
            workspace=taxonomy,
            actor=Actor.of_user(member),
            label=label,
            changes={"slug": "quick"},
            expected_version=1,
        )
    assert "slug" in errors_of(excinfo)
    renamed = label_update(
        workspace=taxonomy,
        actor=Actor.of_user(member),
        label=label,
        changes={"name": "Quick service"},
        expected_version=1,
    )
    assert (renamed.slug, renamed.name, renamed.version) == ("fast", "Quick service", 2)


def test_it_records_who_set_a_boost_and_when(taxonomy, member):
    label = make_label(taxonomy, "fast")
    boosted = label_update(
        workspace=taxonomy,
        actor=Actor.of_user(member),
        label=label,
        changes={"boost": 0.3},
        expected_version=1,
    )
    assert boosted.boost_set_by == member.username and boosted.boost_set_at is not None
    entry = AuditEntry.objects.for_workspace(taxonomy).filter(object_id=str(label.pk)).first()
    assert ("boost", 0.0, 0.3) in entry.changed_fields()


def test_it_refuses_a_boost_out_of_range_and_saves_nothing(taxonomy):
    label = make_label(taxonomy, "fast")
    with pytest.raises(ValidationError) as excinfo:
        label_update(
            workspace=taxonomy, actor=SYSTEM, label=label, changes={"boost": 2}, expected_version=1
        )
    assert "boost" in errors_of(excinfo)
    label.refresh_from_db()
    assert (label.boost, label.version, label.boost_set_by) == (0.0, 1, "")


def test_it_refuses_a_stale_label_edit(taxonomy):
    label = make_label(taxonomy, "fast")
    label_update(
        workspace=taxonomy, actor=SYSTEM, label=label, changes={"name": "A"}, expected_version=1
    )
    with pytest.raises(StaleEdit):
        label_update(
            workspace=taxonomy, actor=SYSTEM, label=label, changes={"name": "B"}, expected_version=1
        )
    label.refresh_from_db()
    assert label.name == "A"


def test_it_keeps_one_value_proposition_per_message(taxonomy):
    with pytest.raises(ValidationError) as excinfo:
        make_message(
            taxonomy,
            "two",
            "Hi",
            labels=["value_proposition:discount", "value_proposition:convenience"],
        )
    assert "one Value proposition label at most" in errors_of(excinfo)["labels"][0]
    assert not Message.objects.for_workspace(taxonomy).exists()


def test_it_lets_a_message_carry_several_channels_and_writes_its_channel_from_them(taxonomy):
    message = make_message(
        taxonomy,
        "both",
        "Hi",
        labels=["channel:web", "channel:email", "value_proposition:discount"],
    )
    assert message.channel == "email+web"
    updated = message_update(
        workspace=taxonomy,
        actor=SYSTEM,
        message=message,
        changes={},
        labels=labels_resolve(workspace=taxonomy, refs=["channel:web"]),
        expected_version=1,
    )
    assert updated.channel == "web"
    entry = AuditEntry.objects.for_workspace(taxonomy).filter(object_type="message").first()
    assert entry.before["labels"] == ["channel:email", "channel:web", "value_proposition:discount"]
    assert entry.after["labels"] == ["channel:web"]


def test_it_turns_an_ingested_channel_string_into_channel_labels(taxonomy):
    (message,) = messages_upsert(
        workspace=taxonomy, specs=[MessageSpec(key="k", channel="mobile+email", body="Hello")]
    )
    refs = sorted(f"{x.label_set.slug}:{x.slug}" for x in message.labels.all())
    assert refs == ["channel:email", "channel:mobile"]
    assert message.channel == "email+mobile"


def test_it_names_unknown_labels(taxonomy):
    with pytest.raises(ValidationError) as excinfo:
        labels_resolve(workspace=taxonomy, refs=["value_proposition:nope", "tone"])
    assert "set:label" in errors_of(excinfo)["labels"][0]
    with pytest.raises(ValidationError) as excinfo:
        labels_resolve(workspace=taxonomy, refs=["value_proposition:nope"])
    assert "value_proposition:nope" in errors_of(excinfo)["labels"][0]


def test_it_refuses_a_duplicate_message_key_as_a_field_error(taxonomy):
    make_message(taxonomy, "hello", "Hi")
    with pytest.raises(ValidationError) as excinfo:
        make_message(taxonomy, "hello", "Hi again")
    assert "already exists" in errors_of(excinfo)["key"][0]


def test_it_refuses_a_message_without_text(taxonomy):
    with pytest.raises(ValidationError) as excinfo:
        make_message(taxonomy, "empty", "  ")
    assert "body" in errors_of(excinfo)


def test_it_refuses_tagging_with_a_retired_label_but_keeps_one_already_carried(taxonomy):
    message = make_message(taxonomy, "m", "Hi", labels=["value_proposition:discount"])
    discount = labels_resolve(workspace=taxonomy, refs=["value_proposition:discount"])[0]
    label_archive(workspace=taxonomy, actor=SYSTEM, label=discount, active=False)
    kept = message_update(
        workspace=taxonomy,
        actor=SYSTEM,
        message=message,
        changes={"subject": "Hello"},
        labels=labels_resolve(workspace=taxonomy, refs=["value_proposition:discount"]),
        expected_version=1,
    )
    assert kept.subject == "Hello"
    with pytest.raises(ValidationError, match="retired"):
        make_message(taxonomy, "n", "Hi", labels=["value_proposition:discount"])


def test_it_refuses_making_a_set_single_while_messages_carry_several(taxonomy):
    make_message(taxonomy, "both", "Hi", labels=["channel:web", "channel:email"])
    channel = LabelSet.objects.for_workspace(taxonomy).get(slug="channel")
    with pytest.raises(ValidationError) as excinfo:
        label_set_update(
            workspace=taxonomy,
            actor=SYSTEM,
            label_set=channel,
            changes={"multiple": False},
            expected_version=channel.version,
        )
    assert "both" in errors_of(excinfo)["multiple"][0]


def test_it_archives_a_message_that_events_name_and_audits_it_with_the_key(taxonomy, rich_customer):
    message = Message.objects.for_workspace(taxonomy).get(key="spring-sale")
    api_key, _ = api_key_create(workspace=taxonomy, scopes=["config"], name="ci")
    archived = message_archive(
        workspace=taxonomy, actor=Actor.of_api_key(api_key), message=message, active=False
    )
    assert archived.active is False
    assert archived.events.count() == 4
    entry = AuditEntry.objects.for_workspace(taxonomy).first()
    assert (entry.action, entry.api_key, entry.actor) == (
        "archive",
        api_key,
        Actor.of_api_key(api_key).name,
    )


def test_it_refuses_a_label_of_another_workspace(taxonomy, other_workspace):
    theirs = make_label(other_workspace, "theirs")
    with pytest.raises(ValidationError) as excinfo:
        message_create(workspace=taxonomy, actor=SYSTEM, key="m", body="x", labels=[theirs])
    assert "No such label" in errors_of(excinfo)["labels"][0]
