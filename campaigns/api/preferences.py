"""Preference exports over the API: POST to start one, GET to follow it, download the zip.

The same export as `manage.py export_preferences`, run by a task; the zip holds the splits'
JSON Lines and the dataset card.
"""

from django.core.exceptions import ValidationError
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from campaigns.models import ApiKey
from campaigns.prompts.preference_jobs import preference_export_create
from campaigns.prompts.preferences import FORMATS, PreferenceOptions
from campaigns.tasks import preference_export
from campaigns.tenancy.authentication import HasScope, request_actor, request_workspace
from config.renderers import ErrorSerializer
from memory.models import PreferenceExport


class PreferenceExportSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True, help_text="Share of pairs rendered, 0-1.")
    download = serializers.SerializerMethodField(help_text="The zip's address once succeeded.")

    class Meta:
        model = PreferenceExport
        fields = [
            "id",
            "status",
            "format",
            "options",
            "stage",
            "done",
            "total",
            "progress",
            "counts",
            "error",
            "actor",
            "created_at",
            "started_at",
            "finished_at",
            "download",
        ]
        read_only_fields = fields

    def get_download(self, job) -> str | None:
        if job.status != PreferenceExport.Status.SUCCEEDED or not job.file:
            return None
        return f"/api/v1/preference-exports/{job.pk}/download"


class PreferenceExportCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS, default="dpo")
    cutoff = serializers.DateTimeField(
        required=False, help_text="Train before it, evaluate after it (ISO-8601)."
    )
    max_pairs = serializers.IntegerField(default=3, min_value=1, max_value=1000)
    min_evidence = serializers.IntegerField(default=0, min_value=0, max_value=10_000)
    holdout_percent = serializers.IntegerField(default=0, min_value=0, max_value=100)
    meta = serializers.BooleanField(default=False, help_text="Add a meta object per line.")


class PreferencesPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50


ERRORS = {
    400: OpenApiResponse(description="The field at fault and why."),
    401: OpenApiResponse(description="Missing, wrong or revoked API key."),
    403: OpenApiResponse(description="Starting needs the write scope (an editor); read follows."),
    404: OpenApiResponse(ErrorSerializer, "No such export in this workspace (or no file yet)."),
}


class PreferenceExportViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Preference-data exports of the key's workspace."""

    permission_classes = [HasScope]
    pagination_class = PreferencesPagination
    serializer_class = PreferenceExportSerializer

    @property
    def required_scope(self):
        return ApiKey.Scope.READ if self.request.method in SAFE_METHODS else ApiKey.Scope.WRITE

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PreferenceExport.unscoped.none()
        return PreferenceExport.objects.for_workspace(request_workspace(self.request))

    @extend_schema(
        operation_id="preference_exports_list",
        summary="List the workspace's preference exports, newest first.",
        tags=["Preference data"],
        responses={200: PreferenceExportSerializer(many=True), 401: ERRORS[401]},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="preference_exports_retrieve",
        summary="One export: status, stage, progress and, once done, its counts.",
        tags=["Preference data"],
        responses={200: PreferenceExportSerializer, 401: ERRORS[401], 404: ERRORS[404]},
    )
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        operation_id="preference_exports_create",
        summary="Start exporting preference pairs conditioned on memory (202; follow Location).",
        description=(
            "The same export as `manage.py export_preferences`: pairs of a customer's sends "
            "that reached the goal and that did not, each with the system prompt of their "
            "memory just before the earlier send, in TRL's conversational format."
        ),
        tags=["Preference data"],
        request=PreferenceExportCreateSerializer,
        responses={
            202: PreferenceExportSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            403: ERRORS[403],
        },
    )
    def create(self, request):
        body = PreferenceExportCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job = preference_export_create(
                workspace=request_workspace(request),
                actor=request_actor(request),
                options=PreferenceOptions(**body.validated_data),
            )
        except ValidationError as invalid:
            raise serializers.ValidationError(invalid.message_dict) from None
        # Without a broker the export runs here and now; the answer then shows its outcome.
        preference_export.delay_on_commit(job.pk)
        job.refresh_from_db()
        return Response(
            PreferenceExportSerializer(job).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/preference-exports/{job.pk}"},
        )

    @extend_schema(
        operation_id="preference_exports_download",
        summary="Download a finished export: a zip of the splits and the dataset card.",
        tags=["Preference data"],
        responses={
            (200, "application/zip"): OpenApiResponse(description="The zip."),
            401: ERRORS[401],
            404: ERRORS[404],
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        job = self.get_object()
        if job.status != PreferenceExport.Status.SUCCEEDED or not job.file:
            raise NotFound("This export has no file yet (see its status).")
        return FileResponse(
            job.file.open("rb"),
            as_attachment=True,
            filename=f"{job.workspace.slug}-preferences-{job.format}-{job.pk}.zip",
            content_type="application/zip",
        )
