"""Draft the next message for a customer, with its checks; save a draft as a message."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api.views import COMMON_ERRORS, LLM_ERRORS, TemplateUnprocessable, llm_unavailable
from campaigns.catalogue.messages import label_ref
from campaigns.llm import MAX_DRAFTS, LlmUnavailable
from campaigns.models import ApiKey
from campaigns.prompts.engine import TemplateProblem
from campaigns.prompts.next_message import next_message_drafts, next_message_save
from campaigns.tenancy.authentication import HasScope, request_actor, request_workspace
from config.rate_limit import ClearThrottleMessage, LlmRateThrottle
from memory.selectors import customer_missing


class NextDraftRequestSerializer(serializers.Serializer):
    campaign = serializers.CharField(required=False, default="", help_text="A campaign's slug…")
    value_proposition = serializers.CharField(
        required=False, default="", help_text="…or a value proposition label's slug."
    )
    count = serializers.IntegerField(min_value=1, max_value=MAX_DRAFTS, default=3)


class HabituationSerializer(serializers.Serializer):
    load = serializers.FloatField(help_text="The habituation load it would carry now.")
    risk = serializers.CharField(help_text="low, medium or high, by the nearest similarity.")
    nearest_message = serializers.CharField(allow_null=True)
    nearest_similarity = serializers.FloatField()
    nearest_sent_at = serializers.DateTimeField(allow_null=True)


class GuardrailCheckSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    rules_checked = serializers.IntegerField()


class NextDraftSerializer(serializers.Serializer):
    subject = serializers.CharField()
    body = serializers.CharField()
    habituation = HabituationSerializer()
    labels = serializers.ListField(child=serializers.CharField(), help_text="Suggested set:label.")
    labels_problem = serializers.CharField(help_text="Why no labels were suggested, if so.")
    guardrails = GuardrailCheckSerializer()


class NextDraftsSerializer(serializers.Serializer):
    customer_id = serializers.CharField()
    brief = serializers.DictField(help_text="source and text.")
    prompt = serializers.DictField(help_text="The customer's prompt (hash, template, memory_at).")
    load_as_of = serializers.DateTimeField()
    drafts = NextDraftSerializer(many=True)


class DraftSaveRequestSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=200)
    subject = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    body = serializers.CharField(required=False, default="", allow_blank=True)
    labels = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="set:label."
    )


class SavedMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())


class NextMessageApiView(APIView):
    """Drafting calls the LLM and saving writes a message: both need the write scope."""

    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.WRITE


class CustomerDraftsView(ClearThrottleMessage, NextMessageApiView):
    throttle_classes = [LlmRateThrottle]  # each call is an LLM call

    @extend_schema(
        operation_id="customer_next_message_drafts",
        summary="Draft the next message for a customer, each draft checked before it is shown",
        description=(
            "The LLM gets the customer's prompt and the brief (a campaign's guidance, or a "
            "value proposition's phrase and meaning). Each draft comes with the habituation "
            "load it would carry for this customer and their nearest recent message, the "
            "labels the taxonomy suggests, and the guardrails that sending it now would meet."
        ),
        request=NextDraftRequestSerializer,
        responses={
            200: NextDraftsSerializer,
            400: OpenApiResponse(description="No brief, or an unknown campaign or proposition."),
            **COMMON_ERRORS,
            **LLM_ERRORS,
        },
        tags=["prompts"],
    )
    def post(self, request, external_id: str):
        body = NextDraftRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            found = next_message_drafts(
                workspace=request_workspace(request), external_id=external_id, **body.validated_data
            )
        except ValidationError as invalid:
            raise serializers.ValidationError(invalid.message_dict) from None
        except TemplateProblem as problem:
            raise TemplateUnprocessable(str(problem)) from None
        except LlmUnavailable as error:
            return llm_unavailable(error)
        if found is None:
            raise NotFound(
                customer_missing(workspace=request_workspace(request), external_id=external_id)
            )
        return Response(
            {
                "customer_id": found.customer_id,
                "brief": {"source": found.brief.source, "text": found.brief.text},
                "prompt": found.prompt.as_dict(),
                "load_as_of": found.load_as_of,
                "drafts": [draft.as_dict() for draft in found.drafts],
            }
        )


class CustomerDraftSaveView(NextMessageApiView):
    @extend_schema(
        operation_id="customer_next_message_save",
        summary="Save a draft as a message with the chosen labels (audited)",
        request=DraftSaveRequestSerializer,
        responses={
            201: SavedMessageSerializer,
            400: OpenApiResponse(description="The field at fault and why (a key taken, …)."),
            **COMMON_ERRORS,
        },
        tags=["prompts"],
    )
    def post(self, request, external_id: str):
        body = DraftSaveRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            message = next_message_save(
                workspace=request_workspace(request),
                actor=request_actor(request),
                **body.validated_data,
            )
        except ValidationError as invalid:
            raise serializers.ValidationError(invalid.message_dict) from None
        return Response(
            {
                "id": message.pk,
                "key": message.key,
                "subject": message.subject,
                "body": message.body,
                "labels": sorted(
                    label_ref(label) for label in message.labels.select_related("label_set")
                ),
            },
            status=status.HTTP_201_CREATED,
        )
