"""Migration 0004 moves stored channel strings into `channel` labels, and back into agreement."""

import importlib

from django.apps import apps

from campaigns.models import Message
from tests.campaigns.catalogue_support import make_label

migration = importlib.import_module("campaigns.migrations.0004_catalogue_messages")


def test_it_turns_channel_strings_into_labels_and_rewrites_strings_from_labels(workspace):
    legacy = Message.objects.create(
        workspace=workspace, key="legacy", body="x", channel="Email+web"
    )
    tagged = Message.objects.create(workspace=workspace, key="tagged", body="y", channel="stale")
    tagged.labels.add(make_label(workspace, "sms", set_slug="channel"))
    migration.channels_to_labels(apps, None)
    legacy.refresh_from_db()
    tagged.refresh_from_db()
    assert sorted(f"{x.label_set.slug}:{x.slug}" for x in legacy.labels.all()) == [
        "channel:email",
        "channel:web",
    ]
    assert legacy.channel == "email+web"
    assert sorted(x.slug for x in tagged.labels.all()) == ["sms", "stale"]
    assert tagged.channel == "sms+stale"
