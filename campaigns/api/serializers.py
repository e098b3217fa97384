"""Shapes of the prompt endpoints' requests and answers (also the OpenAPI schema)."""

from rest_framework import serializers

from campaigns.llm import MAX_DRAFTS
from campaigns.models import LabelSet
from config.renderers import ErrorSerializer


class PromptChoiceSerializer(serializers.Serializer):
    template = serializers.SlugField(
        required=False, help_text="A template's slug; default: the workspace's default template."
    )
    campaign = serializers.SlugField(
        required=False, help_text="A campaign's slug: its template and guidance."
    )
    version = serializers.IntegerField(
        required=False, min_value=0, help_text="A template version; default: the latest."
    )


class PromptQuerySerializer(PromptChoiceSerializer):
    include_context = serializers.BooleanField(
        required=False, default=False, help_text="Also return the template context."
    )


class PromptSerializer(serializers.Serializer):
    customer_id = serializers.CharField()
    template = serializers.CharField()
    template_version = serializers.IntegerField(help_text="0: Primer's built-in template.")
    memory_at = serializers.DateTimeField(
        allow_null=True, help_text="When the customer's memory was computed; null: never."
    )
    content_hash = serializers.CharField(help_text="SHA-256 hex of the prompt's UTF-8 text.")
    prompt = serializers.CharField()
    arm = serializers.CharField(
        help_text="The customer's holdout arm in the campaign: primer, random or no_memory "
        "(no_memory: rendered without their memory); empty without a campaign."
    )
    decision_id = serializers.CharField(
        help_text="The decision the prompt states (its campaign message); send it back as "
        "properties.decision_id on the send event. Empty when none was served."
    )
    context = serializers.DictField(required=False, help_text="With include_context=true.")


class ExportQuerySerializer(PromptChoiceSerializer):
    format = serializers.ChoiceField(choices=["jsonl", "csv"], default="jsonl")


class LlmErrorSerializer(ErrorSerializer):
    reason = serializers.ChoiceField(
        choices=[
            "not_configured",
            "timeout",
            "server_error",
            "connection_error",
            "malformed_response",
        ]
    )


class PreviewRequestSerializer(PromptChoiceSerializer):
    question = serializers.CharField(
        required=False,
        max_length=2000,
        trim_whitespace=True,
        help_text="Default: a question a customer of this workspace might ask about its offers.",
    )


class PreviewSerializer(serializers.Serializer):
    question = serializers.CharField()
    generic = serializers.CharField(help_text="The answer without any system prompt.")
    personalized = serializers.CharField(help_text="The answer with the customer's prompt.")
    model = serializers.CharField()
    duration_ms = serializers.FloatField()
    prompt = PromptSerializer()


class DraftRequestSerializer(serializers.Serializer):
    label_set = serializers.SlugField(required=False, default=LabelSet.VALUE_PROPOSITION)
    label = serializers.SlugField(help_text="The value proposition (a label's slug).")
    count = serializers.IntegerField(required=False, default=3, min_value=1, max_value=MAX_DRAFTS)
    guidance = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


class DraftSerializer(serializers.Serializer):
    subject = serializers.CharField(allow_blank=True)
    body = serializers.CharField(allow_blank=True)
    similarity = serializers.FloatField(
        help_text="Highest cosine similarity to an existing message (0 to 1)."
    )
    most_similar_message = serializers.CharField(allow_blank=True)
    risk = serializers.ChoiceField(choices=["low", "medium", "high"])


class DraftsSerializer(serializers.Serializer):
    label = serializers.CharField()
    drafts = DraftSerializer(many=True)
