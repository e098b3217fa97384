"""Prompt endpoints. Thin: validate the query, call one selector or service, shape the answer."""

from dataclasses import replace

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api.serializers import (
    DraftRequestSerializer,
    DraftsSerializer,
    ErrorSerializer,
    ExportQuerySerializer,
    LlmErrorSerializer,
    PreviewRequestSerializer,
    PreviewSerializer,
    PromptQuerySerializer,
    PromptSerializer,
)
from campaigns.llm import LlmUnavailable, llm_preview
from campaigns.models import ApiKey, Label
from campaigns.prompts.defaults import default_preview_question
from campaigns.prompts.drafts import message_drafts_propose
from campaigns.prompts.engine import TemplateProblem, compile_template
from campaigns.prompts.export import encode_chunks
from campaigns.prompts.selectors import (
    PromptChoiceError,
    prompt_choice,
    prompt_chunks,
    prompt_for_customer,
)
from campaigns.tenancy.authentication import HasScope, request_workspace
from config.rate_limit import ClearThrottleMessage, LlmRateThrottle
from config.renderers import CONTENT_TYPES, ExportFormatMixin
from memory.selectors import customer_missing

COMMON_ERRORS = {
    401: OpenApiResponse(description="Missing, wrong or revoked API key."),
    403: OpenApiResponse(description="The key lacks the read scope."),
    404: OpenApiResponse(ErrorSerializer, "No such customer, template, version or campaign."),
    422: OpenApiResponse(ErrorSerializer, "The template does not compile or render."),
}
LLM_ERRORS = {
    429: OpenApiResponse(ErrorSerializer, "Too many LLM requests for this key or user."),
    503: OpenApiResponse(
        LlmErrorSerializer, "No LLM configured, or it timed out, failed or answered nonsense."
    ),
}


def llm_unavailable(error: LlmUnavailable) -> Response:
    return Response(
        {"detail": error.message, "reason": error.reason},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


class TemplateUnprocessable(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "template_problem"


class PromptApiView(APIView):
    """Shared: a read-scoped key (or a workspace member), and the template choice."""

    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    def choice(self, workspace, data: dict):
        try:
            return prompt_choice(
                workspace=workspace,
                template=data.get("template"),
                campaign=data.get("campaign"),
                version=data.get("version"),
            )
        except PromptChoiceError as error:
            raise NotFound(str(error)) from None

    def prompt(self, workspace, external_id: str, choice):
        try:
            found = prompt_for_customer(workspace=workspace, external_id=external_id, choice=choice)
        except TemplateProblem as error:
            raise TemplateUnprocessable(str(error)) from None
        if found is None:
            raise NotFound(customer_missing(workspace=workspace, external_id=external_id))
        return found


class CustomerPromptView(PromptApiView):
    @extend_schema(
        operation_id="customer_prompt",
        summary="A customer's personalized system prompt",
        parameters=[PromptQuerySerializer],
        responses={200: PromptSerializer, **COMMON_ERRORS},
        tags=["prompts"],
    )
    def get(self, request, external_id: str):
        query = PromptQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        workspace = request_workspace(request)
        # With a campaign, the prompt states the customer's campaign message: a served decision.
        choice = replace(self.choice(workspace, query.validated_data), serve="prompt")
        prompt, context = self.prompt(workspace, external_id, choice)
        data = prompt.as_dict()
        if query.validated_data["include_context"]:
            data["context"] = context
        return Response(data)


class CustomerPromptPreviewView(ClearThrottleMessage, PromptApiView):
    throttle_classes = [LlmRateThrottle]

    @extend_schema(
        operation_id="customer_prompt_preview",
        summary="One question answered generically and with the customer's prompt",
        request=PreviewRequestSerializer,
        responses={200: PreviewSerializer, **COMMON_ERRORS, **LLM_ERRORS},
        tags=["prompts"],
    )
    def post(self, request, external_id: str):
        body = PreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        workspace = request_workspace(request)
        choice = self.choice(workspace, body.validated_data)
        prompt, _ = self.prompt(workspace, external_id, choice)
        try:
            question = body.validated_data.get("question") or default_preview_question(workspace)
            preview = llm_preview(prompt=prompt.text, question=question)
        except LlmUnavailable as error:
            return llm_unavailable(error)
        return Response(
            {
                "question": preview.question,
                "generic": preview.generic,
                "personalized": preview.personalized,
                "model": preview.model,
                "duration_ms": preview.duration_ms,
                "prompt": prompt.as_dict(),
            }
        )


class PromptExportView(ExportFormatMixin, PromptApiView):
    """Stream every customer's prompt; memory stays flat whatever the number of customers."""

    @extend_schema(
        operation_id="prompts_export",
        summary="Every customer's prompt, streamed as JSON Lines or CSV",
        description=(
            "Customers in id order, read in chunks (keyset pagination) and rendered in bulk. "
            "Columns: customer_id, template, template_version, memory_at, content_hash, prompt."
        ),
        parameters=[ExportQuerySerializer],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "text/csv"): OpenApiTypes.STR,
            **COMMON_ERRORS,
        },
        tags=["prompts"],
    )
    def get(self, request):
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        workspace = request_workspace(request)
        choice = replace(self.choice(workspace, query.validated_data), serve="export")
        try:
            compile_template(choice.text)
        except TemplateProblem as error:
            raise TemplateUnprocessable(str(error)) from None
        fmt = request.accepted_renderer.format
        response = StreamingHttpResponse(
            encode_chunks(prompt_chunks(workspace=workspace, choice=choice), fmt),
            content_type=CONTENT_TYPES[fmt],
        )
        response["Content-Disposition"] = f'attachment; filename="prompts-{workspace.slug}.{fmt}"'
        response["Cache-Control"] = "no-store"
        return response


class MessageDraftsView(ClearThrottleMessage, PromptApiView):
    throttle_classes = [LlmRateThrottle]

    @extend_schema(
        operation_id="message_drafts",
        summary="New message texts for a value proposition, with their similarity to existing",
        request=DraftRequestSerializer,
        responses={200: DraftsSerializer, **COMMON_ERRORS, **LLM_ERRORS},
        tags=["prompts"],
    )
    def post(self, request):
        body = DraftRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        workspace = request_workspace(request)
        label = get_object_or_404(
            Label.objects.for_workspace(workspace).select_related("label_set"),
            label_set__slug=data["label_set"],
            slug=data["label"],
        )
        try:
            drafts = message_drafts_propose(
                workspace=workspace, label=label, count=data["count"], guidance=data["guidance"]
            )
        except LlmUnavailable as error:
            return llm_unavailable(error)
        return Response(
            {
                "label": f"{label.label_set.slug}:{label.slug}",
                "drafts": [
                    {
                        "subject": draft.subject,
                        "body": draft.body,
                        "similarity": draft.similarity,
                        "most_similar_message": draft.most_similar_message,
                        "risk": draft.risk,
                    }
                    for draft in drafts
                ],
            }
        )
