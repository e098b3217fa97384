"""GET /api/v1/audit: the workspace's configuration changes, newest first (read scope)."""

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, viewsets
from rest_framework.pagination import CursorPagination

from campaigns.api.serializers import ErrorSerializer
from campaigns.models import ApiKey, AuditEntry
from campaigns.tenancy.audit_selectors import audit_entries
from campaigns.tenancy.authentication import HasScope, request_workspace


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class AuditEntrySerializer(serializers.ModelSerializer):
    changes = serializers.SerializerMethodField(help_text="Each field whose value changed.")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "changes",
        ]
        read_only_fields = fields

    @extend_schema_field(FieldChangeSerializer(many=True))
    def get_changes(self, entry: AuditEntry) -> list[dict]:
        return [
            {"field": name, "before": before, "after": after}
            for name, before, after in entry.changed_fields()
        ]


class AuditQuerySerializer(serializers.Serializer):
    object_type = serializers.CharField(required=False, help_text="e.g. label, message.")
    object_id = serializers.CharField(required=False, help_text="With object_type: one object.")
    actor = serializers.CharField(
        required=False, help_text='Exactly as shown: a user name, "API key <name> (<prefix>…)".'
    )
    since = serializers.DateTimeField(required=False, help_text="Changes after this (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Changes up to this, included.")


class AuditPagination(CursorPagination):
    ordering = ("-at", "-id")
    page_size = 100


@extend_schema_view(
    list=extend_schema(
        operation_id="audit_list",
        summary="The workspace's configuration changes, newest first.",
        tags=["Audit"],
        parameters=[AuditQuerySerializer],
        responses={
            200: AuditEntrySerializer(many=True),
            400: OpenApiResponse(description="A filter's value is malformed (named)."),
            401: OpenApiResponse(description="Missing, wrong or revoked API key."),
            403: OpenApiResponse(description="The key lacks the read scope."),
        },
    ),
    retrieve=extend_schema(
        operation_id="audit_retrieve",
        summary="One configuration change.",
        tags=["Audit"],
        responses={
            200: AuditEntrySerializer,
            404: OpenApiResponse(ErrorSerializer, "No such change in this workspace."),
        },
    ),
)
class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """Who changed what and when, with each field before and after; read-only."""

    serializer_class = AuditEntrySerializer
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ
    pagination_class = AuditPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema needs only the model
            return AuditEntry.unscoped.none()
        query = AuditQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return audit_entries(workspace=request_workspace(self.request), **query.validated_data)
