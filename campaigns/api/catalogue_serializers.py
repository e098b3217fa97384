"""Shapes of the catalogue resources: label sets, labels and messages (also the schema).

Output serializers read models; input serializers check types only. The rules (unique slugs,
a set's one-or-several rule, stale versions) live in the services, shared with the pages.
"""

from __future__ import annotations

from rest_framework import serializers

from campaigns.catalogue.messages import label_ref
from campaigns.catalogue.selectors import CONTENT_GAP_MIN_MESSAGES
from campaigns.models import Label, LabelSet, Message, slug_validator

VERSION_HELP = (
    "The version you read. A change made since then is refused with 409, never overwritten."
)


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text=VERSION_HELP)


class OptionalVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="Optional: " + VERSION_HELP
    )


class LabelSetSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelSet
        fields = ["id", "slug", "name", "description", "multiple", "active", "version"]
        read_only_fields = fields


class LabelSetCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=64, validators=[slug_validator])
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    multiple = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Whether a message may carry several labels of this set.",
    )


class LabelSetUpdateSerializer(VersionSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    multiple = serializers.BooleanField(required=False)


class LabelStatsSerializer(serializers.Serializer):
    rate = serializers.FloatField(
        allow_null=True, help_text="Everyone's goal rate after a send carrying the label."
    )
    lift = serializers.FloatField(allow_null=True, help_text="That rate over baselines.")
    sends = serializers.FloatField(help_text="Discounted sends carrying the label.")
    favoured_by = serializers.IntegerField(
        help_text="Customers whose top-weighted label in the set it is."
    )


class LabelSerializer(serializers.ModelSerializer):
    label_set = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    message_count = serializers.IntegerField(
        read_only=True, help_text="Active messages carrying the label."
    )
    content_gap = serializers.SerializerMethodField(
        help_text=f"Active, but fewer than {CONTENT_GAP_MIN_MESSAGES} active messages carry it."
    )
    stats = serializers.SerializerMethodField(help_text="From the last successful recompute.")

    class Meta:
        model = Label
        fields = [
            "id",
            "label_set",
            "slug",
            "name",
            "prompt_phrase",
            "description",
            "boost",
            "boost_set_by",
            "boost_set_at",
            "active",
            "version",
            "message_count",
            "content_gap",
            "stats",
        ]
        read_only_fields = fields

    def get_content_gap(self, label) -> bool:
        count = getattr(label, "message_count", 0) or 0
        return label.active and count < CONTENT_GAP_MIN_MESSAGES

    def get_stats(self, label) -> LabelStatsSerializer:
        stats = self.context.get("stats")
        if stats is None:
            return None
        found = stats.of(label.pk)
        return {
            "rate": found.rate,
            "lift": found.lift,
            "sends": found.sends,
            "favoured_by": found.favoured_by,
        }


class LabelCreateSerializer(serializers.Serializer):
    label_set = serializers.CharField(max_length=64, help_text="The set's slug.")
    slug = serializers.CharField(max_length=64, validators=[slug_validator])
    name = serializers.CharField(max_length=200)
    prompt_phrase = serializers.CharField(
        max_length=300, required=False, allow_blank=True, default=""
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    boost = serializers.FloatField(min_value=-1.0, max_value=1.0, required=False, default=0.0)


class LabelUpdateSerializer(VersionSerializer):
    name = serializers.CharField(max_length=200, required=False)
    prompt_phrase = serializers.CharField(max_length=300, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    boost = serializers.FloatField(
        min_value=-1.0,
        max_value=1.0,
        required=False,
        help_text="The marketer's nudge, -1 to +1; records who set it and when.",
    )


LABELS_HELP = "Labels as `set:label`, e.g. `value_proposition:discount`."


class MessageSerializer(serializers.ModelSerializer):
    labels = serializers.SerializerMethodField(help_text=LABELS_HELP)
    channel = serializers.CharField(
        read_only=True, help_text="The message's labels in the `channel` set, '+'-joined."
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "key",
            "subject",
            "body",
            "labels",
            "channel",
            "active",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_labels(self, message) -> list[str]:
        return sorted(label_ref(label) for label in message.labels.all())


class MessageCreateSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=200)
    subject = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    body = serializers.CharField(required=False, allow_blank=True, default="")
    labels = serializers.ListField(
        child=serializers.CharField(max_length=140),
        required=False,
        default=list,
        help_text=LABELS_HELP + " One per set unless the set allows several.",
    )


class MessageUpdateSerializer(VersionSerializer):
    key = serializers.CharField(max_length=200, required=False)
    subject = serializers.CharField(max_length=500, required=False, allow_blank=True)
    body = serializers.CharField(required=False, allow_blank=True)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=140),
        required=False,
        help_text=LABELS_HELP + " Replaces the message's labels; omit to keep them.",
    )


class SimilarMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    subject = serializers.CharField(allow_blank=True)
    similarity = serializers.FloatField(help_text="Cosine of character n-gram TF-IDF, 0 to 1.")
    near_duplicate = serializers.BooleanField()


class SimilarMessagesSerializer(serializers.Serializer):
    threshold = serializers.FloatField(help_text="From this similarity up: a near-duplicate.")
    similar = SimilarMessageSerializer(many=True)


class SuggestLabelsRequestSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=20_000, help_text="The message's subject and body.")


class SuggestLabelsSerializer(serializers.Serializer):
    labels = serializers.ListField(
        child=serializers.CharField(),
        help_text="Proposed labels (`set:label`), all from the taxonomy; none applied.",
    )


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current_version = serializers.IntegerField()
