"""Serializers: the events list, and the shapes of the ingestion endpoints for the schema.

Ingestion validates with msgspec (memory.ingest.segment); the request serializers here only
describe the payloads in the OpenAPI document.
"""

from rest_framework import serializers

from memory.models import Event


class SegmentEventSerializer(serializers.Serializer):
    """One Segment call (track, identify, page or screen)."""

    type = serializers.ChoiceField(
        choices=["track", "identify", "page", "screen"],
        required=False,
        help_text="Implied by /v1/track, /v1/identify and /v1/page; required in a batch.",
    )
    userId = serializers.CharField(
        required=False, help_text="Your id for the person: the customer's external id."
    )
    anonymousId = serializers.CharField(
        required=False,
        help_text="Used as the external id when there is no userId. One of the two is required.",
    )
    event = serializers.CharField(required=False, help_text="The event name; required for track.")
    name = serializers.CharField(required=False, help_text="A page's or screen's name.")
    properties = serializers.DictField(
        required=False,
        help_text=(
            "Free-form. On the workspace's send event: `message_id` names the message, and "
            "`text` and/or `labels` ({set: slug or [slugs]}) register it when it is new."
        ),
    )
    traits = serializers.DictField(
        required=False, help_text="identify: merged into the customer's traits."
    )
    context = serializers.DictField(
        required=False, help_text="Only `context.traits` is used (merged into traits)."
    )
    timestamp = serializers.DateTimeField(required=False, help_text="When it happened (ISO 8601).")
    originalTimestamp = serializers.DateTimeField(
        required=False, help_text="The device's time; corrected by sentAt for clock skew."
    )
    sentAt = serializers.DateTimeField(required=False)
    messageId = serializers.CharField(
        required=False,
        help_text="Deduplicates per workspace; derived from the content when missing.",
    )
    writeKey = serializers.CharField(
        required=False, help_text="The write key, when not sent as the Basic user name."
    )


class SegmentBatchSerializer(serializers.Serializer):
    batch = SegmentEventSerializer(many=True, help_text="Up to 2,500 events of 32 KB each.")
    context = serializers.DictField(required=False, help_text="Inherited by every item.")
    sentAt = serializers.DateTimeField(required=False, help_text="Inherited by every item.")
    writeKey = serializers.CharField(required=False)


class SegmentSuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    field = serializers.CharField(help_text="The offending field, e.g. `userId`.")
    reason = serializers.CharField()


class SegmentBatchResponseSerializer(SegmentSuccessSerializer):
    rejected = RejectionSerializer(
        many=True, required=False, help_text="Events of the batch not stored, and why."
    )


class IngestErrorSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = serializers.CharField()
    limit = serializers.ChoiceField(
        choices=["request_size", "event_size", "batch_length"], required=False
    )
    field = serializers.CharField(required=False)
    retryable = serializers.BooleanField(required=False, help_text="Send the same request again.")


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["stored", "duplicate", "identified", "rejected"])
    field = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)


class EventsIngestResponseSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    stored = serializers.IntegerField(help_text="New events stored.")
    duplicates = serializers.IntegerField(help_text="Events already stored (retries).")
    identified = serializers.IntegerField(help_text="identify calls applied.")
    rejected = serializers.IntegerField()
    unknown_message_keys = serializers.ListField(child=serializers.CharField())
    results = EventResultSerializer(many=True)


class EventSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id", read_only=True)
    message = serializers.CharField(
        source="message.key", read_only=True, default=None, allow_null=True
    )
    refers_to_unknown_message = serializers.BooleanField(read_only=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "customer",
            "name",
            "occurred_at",
            "received_at",
            "properties",
            "message",
            "message_key",
            "refers_to_unknown_message",
            "dedup_key",
        ]
        read_only_fields = fields
