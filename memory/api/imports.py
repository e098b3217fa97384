"""Imports over the API: POST a file (multipart) to start one, GET it to follow its progress.

The same service as the import page: `event_import_create` checks and stores the upload, the
task runs it; the answer is the import's row, with its progress, summary and first bad lines.
"""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from campaigns.models import ApiKey
from campaigns.tenancy.authentication import HasScope, request_actor, request_workspace
from config.renderers import ErrorSerializer
from memory.import_selectors import imports_of_workspace
from memory.imports import FORMATS, event_import_create, event_import_retry
from memory.models import EventImport
from memory.tasks import event_import


class EventImportSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True, help_text="Share of lines read, 0 to 1.")
    summary = serializers.DictField(
        child=serializers.FloatField(),
        read_only=True,
        help_text="When finished: the counts `import_events` prints (lines, stored, duplicates, "
        "repeats, identified, rejected, messages_registered, unknown_message_keys, customers) "
        "and seconds.",
    )

    class Meta:
        model = EventImport
        fields = [
            "id",
            "status",
            "format",
            "file_name",
            "file_size",
            "actor",
            "lines_done",
            "lines_total",
            "progress",
            "stored",
            "rejected",
            "summary",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class BadLineSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="The file.")
    line = serializers.IntegerField(help_text="Its line number (1 is the first).")
    field = serializers.CharField(help_text="The field at fault, when one is.")
    reason = serializers.CharField()


class EventImportDetailSerializer(EventImportSerializer):
    errors = BadLineSerializer(
        many=True, read_only=True, help_text="The first bad lines (PRIMER_IMPORT_ERRORS_KEPT)."
    )

    class Meta(EventImportSerializer.Meta):
        fields = [*EventImportSerializer.Meta.fields, "errors"]
        read_only_fields = fields


@extend_schema_field({"type": "array", "items": {"type": "string", "format": "binary"}})
class UploadsField(serializers.ListField):
    """Files sent as repeated multipart parts of one name."""


class EventImportCreateSerializer(serializers.Serializer):
    files = UploadsField(
        child=serializers.FileField(),
        help_text="One events file (JSONL or CSV, plain, .gz or .xz), or the three Starbucks "
        "files: portfolio.json, profile.json, transcript.json[.xz]. Repeat the part for each.",
    )
    format = serializers.ChoiceField(choices=FORMATS, default="auto")
    user_id = serializers.CharField(required=False, help_text="CSV: the user id column.")
    anonymous_id = serializers.CharField(required=False, help_text="CSV: the anonymous id column.")
    event = serializers.CharField(required=False, help_text="CSV: the event name column…")
    event_name = serializers.CharField(required=False, help_text="…or one name for every row.")
    timestamp = serializers.CharField(required=False, help_text="CSV: the timestamp column.")
    message_id = serializers.CharField(required=False, help_text="CSV: a unique id per row.")
    type = serializers.CharField(required=False, help_text="CSV: the call type column.")
    properties = serializers.CharField(
        required=False, help_text="CSV: comma-separated property columns (default: the rest)."
    )
    numeric = serializers.CharField(
        required=False, help_text="CSV: comma-separated properties read as numbers."
    )
    delimiter = serializers.CharField(
        required=False, trim_whitespace=False, help_text="CSV: one character; \\t for tab."
    )


class ImportScope(HasScope):
    """Start imports with the write scope; follow them with read, or the write key that started."""

    def has_permission(self, request, view):
        if super().has_permission(request, view):
            return True
        api_key = request.auth
        return (
            request.method in SAFE_METHODS
            and isinstance(api_key, ApiKey)
            and api_key.has_scope(ApiKey.Scope.WRITE)
        )


class ImportsPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50


ERRORS = {
    400: OpenApiResponse(description="The field at fault and why (e.g. a file that is not gzip)."),
    401: OpenApiResponse(description="Missing, wrong or revoked API key."),
    403: OpenApiResponse(description="The key lacks the write scope (read suffices to follow)."),
    404: OpenApiResponse(ErrorSerializer, "No such import in this workspace."),
}


def errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in codes}


class EventImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Event file imports of the key's workspace."""

    permission_classes = [ImportScope]
    pagination_class = ImportsPagination
    parser_classes = [MultiPartParser, FormParser]

    @property
    def required_scope(self):
        return ApiKey.Scope.READ if self.request.method in SAFE_METHODS else ApiKey.Scope.WRITE

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema needs only the model
            return EventImport.unscoped.none()
        imports = imports_of_workspace(workspace=request_workspace(self.request))
        wanted = self.request.query_params.get("status")
        return imports.filter(status=wanted) if wanted else imports

    def get_serializer_class(self):
        return EventImportSerializer if self.action == "list" else EventImportDetailSerializer

    def _queued(self, job: EventImport) -> Response:
        # Without a broker the import runs here and now; the answer then shows its outcome.
        event_import.delay_on_commit(job.pk)
        job.refresh_from_db()
        return Response(
            EventImportDetailSerializer(job).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/imports/{job.pk}"},
        )

    @extend_schema(
        operation_id="imports_list",
        summary="List the workspace's imports, newest first.",
        tags=["Imports"],
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=EventImport.Status.values,
                description="Only imports with this status.",
            )
        ],
        responses={200: EventImportSerializer(many=True), **errors(401, 403)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="imports_retrieve",
        summary="One import: status, progress, summary and its first bad lines.",
        tags=["Imports"],
        responses={200: EventImportDetailSerializer, **errors(401, 403, 404)},
    )
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        operation_id="imports_create",
        summary="Upload a file and start importing it (202; follow it at Location).",
        description=(
            "The same rules as `manage.py import_events`: a bad line is reported with its "
            "number while the rest is imported, and a file imported twice adds nothing. A file "
            "that cannot be imported at all (empty, too large, not what its name says, a CSV "
            "mapping that does not fit its header) is refused with 400 before it is stored."
        ),
        tags=["Imports"],
        request={"multipart/form-data": EventImportCreateSerializer},
        responses={202: EventImportDetailSerializer, **errors(400, 401, 403)},
    )
    def create(self, request):
        body = EventImportCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        try:
            job = event_import_create(
                workspace=request_workspace(request),
                actor=request_actor(request),
                uploads=data.pop("files"),
                format=data.pop("format"),
                options=data,
            )
        except ValidationError as invalid:
            raise serializers.ValidationError(invalid.message_dict) from None
        return self._queued(job)

    @extend_schema(
        operation_id="imports_run_again",
        summary="Run a failed or lost import again (safe: stored events are not stored twice).",
        tags=["Imports"],
        request=None,
        responses={202: EventImportDetailSerializer, **errors(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="run-again")
    def run_again(self, request, pk=None):
        found = self.get_object()
        try:
            job = event_import_retry(workspace=request_workspace(request), job_id=found.pk)
        except ValidationError as refused:
            raise serializers.ValidationError({"status": refused.messages}) from None
        return self._queued(job)
