"""Guardrails and overrides over REST (/api/v1/guardrails, /api/v1/overrides).

Thin, as config_views: an input serializer checks types and resolves references (a label as
`set:label`, a message by key, a campaign by slug) in the caller's workspace, one service
changes (audited as the key or the user), the answer is the object as it is now. Reads need the
`read` scope, writes `config`; DELETE archives; PATCH `active` archives or restores.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from campaigns.api.config_views import ACTIVE, ERRORS, STALE, ConfigViewSet, _flag
from campaigns.models import Campaign, Guardrail, Label, Message, Override
from campaigns.strategy.selectors import guardrails_filtered, overrides_filtered
from campaigns.strategy.services import (
    guardrail_archive,
    guardrail_create,
    guardrail_update,
    override_archive,
    override_create,
    override_update,
)

LABEL_HELP = "A label as `set:label`, e.g. `value_proposition:discount` or `channel:email`."


def _label_ref(label: Label | None) -> str | None:
    return None if label is None else f"{label.label_set.slug}:{label.slug}"


class LabelRefField(serializers.CharField):
    """A label named `set:label`, resolved in the caller's workspace."""

    def to_internal_value(self, data):
        ref = super().to_internal_value(data)
        # The field's own checks (no NUL character, the length) before the lookup: the
        # database refuses a NUL in a query with an error, not an empty answer.
        self.run_validators(ref)
        set_slug, _, slug = ref.partition(":")
        found = (
            Label.objects.for_workspace(self.context["workspace"])
            .filter(label_set__slug=set_slug, slug=slug)
            .select_related("label_set")
            .first()
        )
        if found is None:
            raise serializers.ValidationError(f"No label {ref!r} in this workspace ({LABEL_HELP})")
        return found


class _Versioned(serializers.Serializer):
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="The version you read; older: 409."
    )
    active = serializers.BooleanField(required=False, help_text="false archives, true restores.")


# Guardrails ------------------------------------------------------------------------------------


class GuardrailSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()
    message = serializers.SlugRelatedField(read_only=True, slug_field="key")
    campaign = serializers.SlugRelatedField(read_only=True, slug_field="slug")

    class Meta:
        model = Guardrail
        fields = [
            "id",
            "name",
            "kind",
            "label",
            "message",
            "campaign",
            "limit",
            "period",
            "audience",
            "event_name",
            "hours",
            "quiet_start",
            "quiet_end",
            "note",
            "active",
            "created_by",
            "created_at",
            "version",
        ]
        read_only_fields = fields

    def get_label(self, obj) -> str | None:
        return _label_ref(obj.label)


class GuardrailInputSerializer(_Versioned):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Guardrail.Kind.choices)
    label = LabelRefField(required=False, allow_null=True, help_text=LABEL_HELP)
    message = serializers.CharField(
        required=False, allow_null=True, max_length=200, help_text="A message key."
    )
    campaign = serializers.SlugField(required=False, allow_null=True, help_text="A campaign slug.")
    limit = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    period = serializers.ChoiceField(
        choices=Guardrail.Period.choices, required=False, allow_blank=True
    )
    audience = serializers.JSONField(required=False, help_text="Eligibility: a trait filter.")
    event_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    hours = serializers.FloatField(required=False, allow_null=True, min_value=0.01)
    quiet_start = serializers.TimeField(required=False, allow_null=True, help_text="HH:MM local.")
    quiet_end = serializers.TimeField(required=False, allow_null=True, help_text="HH:MM local.")
    note = serializers.CharField(required=False, allow_blank=True)

    def validate_message(self, key: str | None) -> Message | None:
        if key is None:
            return None
        found = Message.objects.for_workspace(self.context["workspace"]).filter(key=key).first()
        if found is None:
            raise serializers.ValidationError(f"No message {key!r} in this workspace.")
        return found

    def validate_campaign(self, slug: str | None) -> Campaign | None:
        if slug is None:
            return None
        found = Campaign.objects.for_workspace(self.context["workspace"]).filter(slug=slug).first()
        if found is None:
            raise serializers.ValidationError(f"No campaign {slug!r} in this workspace.")
        return found


class _ArchivingViewSet(ConfigViewSet):
    """Shared: create, PATCH (fields, or `active` to archive/restore), DELETE archives."""

    input_serializer = None
    create_service = update_service = archive_service = None
    argument = ""

    def create(self, request):
        data = self.valid(self.input_serializer)
        data.pop("version", None)
        active = data.pop("active", True)
        created = type(self).create_service(workspace=self.workspace, actor=self.actor, **data)
        if not active:
            created = self._archive(created, False, None)
        return Response(self.get_serializer(created).data, status=status.HTTP_201_CREATED)

    def _archive(self, obj, active: bool, version: int | None):
        return type(self).archive_service(
            workspace=self.workspace,
            actor=self.actor,
            active=active,
            expected_version=version,
            **{self.argument: obj},
        )

    def partial_update(self, request, pk: str):
        obj = self.get_object()
        data = self.valid(self.input_serializer, partial=True)
        version = data.pop("version", None)
        active = data.pop("active", None)
        if data:
            obj = type(self).update_service(
                workspace=self.workspace,
                actor=self.actor,
                changes=data,
                expected_version=version,
                **{self.argument: obj},
            )
            version = obj.version
        if active is not None and active != obj.active:
            obj = self._archive(obj, active, version)
        return Response(self.get_serializer(obj).data)

    def destroy(self, request, pk: str):
        return Response(self.get_serializer(self._archive(self.get_object(), False, None)).data)


@extend_schema_view(
    list=extend_schema(summary="The workspace's guardrails", parameters=[ACTIVE]),
    retrieve=extend_schema(summary="One guardrail"),
    create=extend_schema(
        summary="Create a guardrail",
        request=GuardrailInputSerializer,
        responses={201: GuardrailSerializer, **ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change, archive or restore a guardrail (send the version you read)",
        request=GuardrailInputSerializer,
        responses={200: GuardrailSerializer, **ERRORS, **STALE},
    ),
    destroy=extend_schema(summary="Archive a guardrail (PATCH active=true restores it)"),
)
@extend_schema(tags=["strategy"], responses={200: GuardrailSerializer, **ERRORS})
class GuardrailViewSet(_ArchivingViewSet):
    """Frequency caps, eligibility, waits after an event, quiet hours (decision 0260)."""

    serializer_class = GuardrailSerializer
    input_serializer = GuardrailInputSerializer
    queryset = Guardrail.unscoped.none()
    lookup_value_regex = "[0-9]+"
    create_service = staticmethod(guardrail_create)
    update_service = staticmethod(guardrail_update)
    archive_service = staticmethod(guardrail_archive)
    argument = "guardrail"

    def get_queryset(self):
        active = _flag(self.request.query_params.get("active"))
        return guardrails_filtered(workspace=self.workspace, active=active)


# Overrides -------------------------------------------------------------------------------------


class OverrideSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()
    customer = serializers.CharField(source="customer_external_id", read_only=True)

    class Meta:
        model = Override
        fields = [
            "id",
            "customer",
            "segment",
            "label",
            "action",
            "value",
            "note",
            "expires_at",
            "active",
            "created_by",
            "created_at",
            "version",
        ]
        read_only_fields = fields

    def get_label(self, obj) -> str:
        return _label_ref(obj.label)


class OverrideInputSerializer(_Versioned):
    customer = serializers.CharField(
        source="customer_external_id",
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="A customer's id; or give a segment.",
    )
    segment = serializers.JSONField(required=False, help_text="A trait filter (not everyone).")
    label = LabelRefField(help_text=LABEL_HELP)
    action = serializers.ChoiceField(choices=Override.Action.choices)
    value = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="pin: the weight 0..1 (0: never); raise/lower: the strength (0, 1]; forget: -.",
    )
    note = serializers.CharField(required=False, allow_blank=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


@extend_schema_view(
    list=extend_schema(summary="The workspace's overrides", parameters=[ACTIVE]),
    retrieve=extend_schema(summary="One override"),
    create=extend_schema(
        summary="Create an override",
        request=OverrideInputSerializer,
        responses={201: OverrideSerializer, **ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change, archive or restore an override (send the version you read)",
        request=OverrideInputSerializer,
        responses={200: OverrideSerializer, **ERRORS, **STALE},
    ),
    destroy=extend_schema(summary="Archive an override (PATCH active=true restores it)"),
)
@extend_schema(tags=["strategy"], responses={200: OverrideSerializer, **ERRORS})
class OverrideViewSet(_ArchivingViewSet):
    """Per customer or segment: pin, raise, lower or forget a label's weight (decision 0260)."""

    serializer_class = OverrideSerializer
    input_serializer = OverrideInputSerializer
    queryset = Override.unscoped.none()
    lookup_value_regex = "[0-9]+"
    create_service = staticmethod(override_create)
    update_service = staticmethod(override_update)
    archive_service = staticmethod(override_archive)
    argument = "override"

    def handle_exception(self, exc):
        # The service names the model's field; the API calls it `customer`.
        if isinstance(exc, DjangoValidationError) and hasattr(exc, "error_dict"):
            renamed = dict(exc.error_dict)
            if "customer_external_id" in renamed:
                renamed["customer"] = renamed.pop("customer_external_id")
            exc = DjangoValidationError(renamed)
        return super().handle_exception(exc)

    def get_queryset(self):
        params = self.request.query_params
        return overrides_filtered(
            workspace=self.workspace,
            active=_flag(params.get("active")),
            customer=params.get("customer", "").strip(),
        )
