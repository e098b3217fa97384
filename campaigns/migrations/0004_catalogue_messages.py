"""A message's channel is its labels in the `channel` set: move channel strings into labels.

Every message whose `channel` string names channels ("email" or "email+web") gets those labels
(created in the workspace's `channel` set when missing), and every message's string is then
rewritten from its channel labels, so the two agree (docs/decisions/0200).
"""

from django.db import migrations, models
from django.utils.text import slugify


def channels_to_labels(apps, schema_editor):
    Message = apps.get_model("campaigns", "Message")
    Label = apps.get_model("campaigns", "Label")
    LabelSet = apps.get_model("campaigns", "LabelSet")
    messages = Message._default_manager.exclude(channel="").select_related("workspace")
    for message in messages.iterator():
        label_set, _ = LabelSet._default_manager.get_or_create(
            workspace_id=message.workspace_id,
            slug="channel",
            defaults={"name": "Channel", "multiple": True},
        )
        for part in message.channel.replace(",", "+").split("+"):
            slug = slugify(part.strip())
            if not slug:
                continue
            label, _ = Label._default_manager.get_or_create(
                workspace_id=message.workspace_id,
                label_set=label_set,
                slug=slug,
                defaults={"name": slug.replace("-", " ").capitalize()},
            )
            message.labels.add(label)
    through = Message.labels.through._default_manager
    tagged = through.filter(label__label_set__slug="channel").values_list(
        "message_id", "label__slug"
    )
    channels: dict[int, list[str]] = {}
    for message_id, slug in tagged:
        channels.setdefault(message_id, []).append(slug)
    for message in Message._default_manager.only("pk", "channel").iterator():
        channel = "+".join(sorted(channels.get(message.pk, [])))[:64]
        if message.channel != channel:
            Message._default_manager.filter(pk=message.pk).update(channel=channel)


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0003_catalogue_versions_and_audit")]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="channel",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="Written from the message's labels in the `channel` set.",
                max_length=64,
            ),
        ),
        migrations.RunPython(channels_to_labels, migrations.RunPython.noop),
    ]
