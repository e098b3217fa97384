"""POST /api/v1/effect-preview: a boost's, an override's or a guardrail's effect before saving.

Thin: the proposal is checked as saving would check it (the override and guardrail input
serializers, then the services' own checks), nothing is saved, and the answer is
campaigns/prompts/preview.py's.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api.strategy import GuardrailInputSerializer, OverrideInputSerializer
from campaigns.models import ApiKey, Guardrail, Label, Override
from campaigns.prompts.preview import PROMPT_CAP, effect_preview
from campaigns.strategy.services import guardrail_proposed, override_proposed
from campaigns.tenancy.authentication import HasScope, request_actor, request_workspace
from memory.effect_preview import DEFAULT_SAMPLE, PREVIEW_KINDS

# What an override or a guardrail proposal is checked with: model, input serializer, service.
PROPOSALS = {
    "override": (Override, OverrideInputSerializer, override_proposed),
    "guardrail": (Guardrail, GuardrailInputSerializer, guardrail_proposed),
}


class _EffectPreviewFields(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(PREVIEW_KINDS), help_text="What would change.")
    label = serializers.IntegerField(required=False, help_text="kind=boost: the label's id.")
    boost = serializers.FloatField(
        required=False, min_value=-1.0, max_value=1.0, help_text="kind=boost: the proposed boost."
    )
    id = serializers.IntegerField(
        required=False,
        help_text="kind=override or guardrail: the one edited (its fields are changed as a "
        "PATCH would); omit for a new one.",
    )
    sample = serializers.IntegerField(
        required=False,
        default=DEFAULT_SAMPLE,
        min_value=100,
        max_value=20_000,
        help_text="Customers drawn at random among those with memory.",
    )
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**32 - 1)


class _EffectPreviewInput(_EffectPreviewFields):
    override = serializers.DictField(required=False)
    guardrail = serializers.DictField(required=False)


class EffectPreviewRequestSerializer(_EffectPreviewFields):
    """Documents the request: the proposal's fields are the create/PATCH endpoints' own."""

    override = OverrideInputSerializer(
        required=False, help_text="kind=override: as POST /api/v1/overrides (PATCH with id)."
    )
    guardrail = GuardrailInputSerializer(
        required=False, help_text="kind=guardrail: as POST /api/v1/guardrails (PATCH with id)."
    )


def _required(field: str, kind: str) -> ValidationError:
    return ValidationError({field: [f"This field is required for kind {kind}."]})


class EffectPreviewView(APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        summary="Preview a change's effect on next best messages and prompts before making it",
        description="On a stated random sample of customers with memory (`sample`, 2,000 by "
        "default), reads each one's stored next best messages as the read path would with the "
        "guardrails and overrides in force now, and again with the change: how many customers' "
        "top message would change (with a Wilson 95% interval on the share), the messages it "
        "newly excludes or allows, each label's share of top messages per label set before "
        "and after, and one changed customer's tops before and after with the reasons. "
        f"`prompts`: of the sampled customers whose label weights the change touches (at most "
        f"{PROMPT_CAP} rendered), how many prompts change, with an interval, and one "
        "customer's unified diff. Nothing is saved. Kinds: `boost` (`label`, `boost`), "
        "`override` and `guardrail` (the object as the create endpoint takes it; with `id`, "
        "an edit of that one as PATCH takes it; `active: false` previews archiving it). "
        "A customer's own override is previewed on that customer alone.",
        request=EffectPreviewRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        tags=["strategy"],
    )
    def post(self, request):
        workspace = request_workspace(request)
        checked = _EffectPreviewInput(data=request.data)
        if not checked.is_valid():
            raise ValidationError(checked.errors)
        data = checked.validated_data
        kind, common = data["kind"], {"sample": data["sample"], "seed": data["seed"]}
        if kind == "boost":
            for field in ("label", "boost"):
                if field not in data:
                    raise _required(field, kind)
            label = Label.objects.for_workspace(workspace).filter(pk=data["label"]).first()
            if label is None:
                raise NotFound(f"No label {data['label']} in this workspace.")
            answer = effect_preview(
                workspace=workspace,
                kind=kind,
                label=label,
                boost=data["boost"],
                by=request_actor(request).name,
                **common,
            )
            return Response(answer)
        model, input_serializer, proposed = PROPOSALS[kind]
        if kind not in data:
            raise _required(kind, kind)
        existing = None
        if "id" in data:
            existing = model.objects.for_workspace(workspace).filter(pk=data["id"]).first()
            if existing is None:
                raise NotFound(f"No {kind} {data['id']} in this workspace.")
        fields = input_serializer(
            data=data[kind], partial=existing is not None, context={"workspace": workspace}
        )
        if not fields.is_valid():
            raise ValidationError({kind: fields.errors})
        changes = dict(fields.validated_data)
        changes.pop("version", None)
        try:
            proposal = proposed(
                workspace=workspace,
                actor=request_actor(request),
                changes=changes,
                **{kind: existing},
            )
        except DjangoValidationError as refused:
            errors = dict(refused.message_dict)
            if "customer_external_id" in errors:  # the API calls it `customer`
                errors["customer"] = errors.pop("customer_external_id")
            raise ValidationError({kind: errors}) from None
        answer = effect_preview(
            workspace=workspace,
            kind=kind,
            change={"id": data.get("id"), **request.data[kind]},
            **{kind: proposal},
            **common,
        )
        return Response(answer)
