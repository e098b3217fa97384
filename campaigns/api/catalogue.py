"""The catalogue over REST: label sets, labels and messages, as ViewSets on the router.

Thin: an input serializer checks types, one service (the pages' own) changes, an output
serializer answers. Reads need the `read` scope, writes `config` (session users: viewers read,
editors and owners write). DELETE archives: events and memory that refer to the object keep it.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from campaigns.api import catalogue_serializers as shapes
from campaigns.catalogue.labels import (
    label_archive,
    label_create,
    label_set_archive,
    label_set_create,
    label_set_update,
    label_update,
)
from campaigns.catalogue.messages import (
    labels_resolve,
    message_archive,
    message_create,
    message_update,
)
from campaigns.catalogue.selectors import (
    NEAR_DUPLICATE_SIMILARITY,
    label_sets_filtered,
    labels_filtered,
    messages_filtered,
    messages_similar,
)
from campaigns.catalogue.suggest import labels_suggest
from campaigns.llm import LlmUnavailable
from campaigns.models import ApiKey, Label, LabelSet, Message
from campaigns.tenancy.authentication import HasScope, request_actor, request_workspace
from campaigns.tenancy.changes import StaleEdit
from config.rate_limit import ClearThrottleMessage, LlmRateThrottle
from memory.catalogue_stats import catalogue_stats


@contextmanager
def service_errors():
    """Turn a service's validation errors into a 400 by field (StaleEdit: see handle_exception)."""
    try:
        yield
    except DjangoValidationError as error:
        if hasattr(error, "error_dict"):
            detail = {
                ("non_field_errors" if name == NON_FIELD_ERRORS else name): messages
                for name, messages in error.message_dict.items()
            }
        else:
            detail = {"non_field_errors": error.messages}
        raise ApiValidationError(detail) from None


class ByIdCursor(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


def flag(value: str | None) -> bool | None:
    return {"true": True, "1": True, "false": False, "0": False}.get((value or "").lower())


ACTIVE = OpenApiParameter("active", bool, description="Only active (true) or retired (false).")
SEARCH = OpenApiParameter("q", str, description="Text the slug, key, name or text contains.")
ERRORS = {
    400: OpenApiResponse(description="A field is invalid: {field: [reasons]}."),
    401: OpenApiResponse(description="Missing, wrong or revoked API key."),
    403: OpenApiResponse(description="The key lacks the scope (reads: read; writes: config)."),
    404: OpenApiResponse(description="No such object in this workspace."),
}
CONFLICT = {409: OpenApiResponse(shapes.ConflictSerializer, "Changed meanwhile: stale version.")}
ARCHIVE_NOTE = (
    "Archives: the object stays, retired (active=false), so the events, messages and memory "
    "that refer to it keep their history; restore brings it back."
)


class CatalogueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Shared: scoped queryset, scope by action, create/update/archive through services."""

    permission_classes = [HasScope]
    pagination_class = ByIdCursor
    lookup_value_regex = "[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    # Set by each resource: its model, the selector listing it, and its own query filters.
    model = selector = update_serializer = None
    text_filters: tuple[str, ...] = ()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no request
            return self.model.unscoped.none()
        if self.action != "list":
            return self.selector(workspace=self.workspace)
        params = self.request.query_params
        return self.selector(
            workspace=self.workspace,
            active=flag(params.get("active")),
            q=params.get("q", "").strip(),
            **{name: params.get(name, "") for name in self.text_filters},
        )

    @property
    def required_scope(self) -> str:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return ApiKey.Scope.READ
        return ApiKey.Scope.CONFIG

    def handle_exception(self, exc):
        if isinstance(exc, StaleEdit):
            return Response(
                {"detail": str(exc), "current_version": exc.current_version},
                status=status.HTTP_409_CONFLICT,
            )
        return super().handle_exception(exc)

    @property
    def workspace(self):
        return request_workspace(self.request)

    def created(self, obj) -> Response:
        return Response(self.get_serializer(self.refetch(obj)).data, status=201)

    def refetch(self, obj):
        return self.get_queryset().get(pk=obj.pk)

    def answer(self, obj) -> Response:
        return Response(self.get_serializer(self.refetch(obj)).data)

    def body(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def set_active(self, obj, active: bool) -> Response:
        data = self.body(shapes.OptionalVersionSerializer)
        with service_errors():
            saved = self.archive_service(
                workspace=self.workspace,
                actor=request_actor(self.request),
                active=active,
                expected_version=data.get("version"),
                **{self.model_argument: obj},
            )
        return self.answer(saved)

    def destroy(self, request, *args, **kwargs):
        return self.set_active(self.get_object(), False)

    @action(detail=True, methods=["post"])
    def archive(self, request, *args, **kwargs):
        return self.set_active(self.get_object(), False)

    @action(detail=True, methods=["post"])
    def restore(self, request, *args, **kwargs):
        return self.set_active(self.get_object(), True)

    def partial_update(self, request, *args, **kwargs):
        obj = self.get_object()
        data = dict(self.body(self.update_serializer))
        version = data.pop("version")
        with service_errors():
            saved = self.update_service(obj, data, version)
        return self.answer(saved)


def _schema(name: str, output, create, update, parameters, extra=None):
    """Document the resource's operations with their real bodies."""
    archive = {
        "request": shapes.OptionalVersionSerializer,
        "responses": {200: output, **ERRORS, **CONFLICT},
    }
    return extend_schema_view(
        list=extend_schema(summary=f"List {name}s", parameters=parameters),
        retrieve=extend_schema(summary=f"One {name}", responses={200: output, **ERRORS}),
        create=extend_schema(
            summary=f"Create a {name}", request=create, responses={201: output, **ERRORS}
        ),
        partial_update=extend_schema(
            summary=f"Change a {name}",
            request=update,
            responses={200: output, **ERRORS, **CONFLICT},
        ),
        destroy=extend_schema(
            summary=f"Archive a {name} (not a deletion)", description=ARCHIVE_NOTE, **archive
        ),
        archive=extend_schema(summary=f"Archive a {name}", description=ARCHIVE_NOTE, **archive),
        restore=extend_schema(summary=f"Restore an archived {name}", **archive),
        **(extra or {}),
    )


@_schema(
    "label set",
    shapes.LabelSetSerializer,
    shapes.LabelSetCreateSerializer,
    shapes.LabelSetUpdateSerializer,
    [ACTIVE, SEARCH],
)
@extend_schema(tags=["catalogue"])
class LabelSetViewSet(CatalogueViewSet):
    """Families of labels (value proposition, tone, channel): slug fixed, one-or-several rule."""

    serializer_class = shapes.LabelSetSerializer
    update_serializer = shapes.LabelSetUpdateSerializer
    model = LabelSet
    selector = staticmethod(label_sets_filtered)
    archive_service = staticmethod(label_set_archive)
    model_argument = "label_set"

    def create(self, request, *args, **kwargs):
        data = self.body(shapes.LabelSetCreateSerializer)
        with service_errors():
            created = label_set_create(
                workspace=self.workspace, actor=request_actor(request), **data
            )
        return self.created(created)

    def update_service(self, obj, changes, version):
        return label_set_update(
            workspace=self.workspace,
            actor=request_actor(self.request),
            label_set=obj,
            changes=changes,
            expected_version=version,
        )


LABEL_SET = OpenApiParameter("label_set", str, description="Only labels of this set (its slug).")
LABEL = OpenApiParameter("label", str, description="Only messages carrying it (`set:label`).")


@_schema(
    "label",
    shapes.LabelSerializer,
    shapes.LabelCreateSerializer,
    shapes.LabelUpdateSerializer,
    [LABEL_SET, ACTIVE, SEARCH],
)
@extend_schema(tags=["catalogue"])
class LabelViewSet(CatalogueViewSet):
    """Labels with their prompt phrase, boost and provenance, and the last run's numbers."""

    serializer_class = shapes.LabelSerializer
    update_serializer = shapes.LabelUpdateSerializer
    model = Label
    selector = staticmethod(labels_filtered)
    text_filters = ("label_set",)
    archive_service = staticmethod(label_archive)
    model_argument = "label"

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.workspace is not None:
            context["stats"] = catalogue_stats(workspace=self.workspace)
        return context

    def create(self, request, *args, **kwargs):
        data = dict(self.body(shapes.LabelCreateSerializer))
        label_set = (
            LabelSet.objects.for_workspace(self.workspace)
            .filter(slug=data.pop("label_set"))
            .first()
        )
        if label_set is None:
            raise ApiValidationError({"label_set": ["No such label set in this workspace."]})
        with service_errors():
            created = label_create(
                workspace=self.workspace, actor=request_actor(request), label_set=label_set, **data
            )
        return self.created(created)

    def update_service(self, obj, changes, version):
        return label_update(
            workspace=self.workspace,
            actor=request_actor(self.request),
            label=obj,
            changes=changes,
            expected_version=version,
        )


@_schema(
    "message",
    shapes.MessageSerializer,
    shapes.MessageCreateSerializer,
    shapes.MessageUpdateSerializer,
    [LABEL, LABEL_SET, ACTIVE, SEARCH],
    extra={
        "similar": extend_schema(
            summary="The active messages nearest to this one's text",
            description="By the habituation engine's text similarity; a near-duplicate wears "
            "customers out as if they had got this message.",
            responses={200: shapes.SimilarMessagesSerializer, **ERRORS},
        ),
        "suggest_labels": extend_schema(
            summary="Labels the LLM proposes for a text, from the workspace's taxonomy",
            description="Validated against the taxonomy; nothing is applied. 503 when no LLM "
            "is configured or it fails, with the reason.",
            request=shapes.SuggestLabelsRequestSerializer,
            responses={
                200: shapes.SuggestLabelsSerializer,
                429: OpenApiResponse(description="Too many LLM requests for this key or user."),
                503: OpenApiResponse(description="No LLM, or it failed: {detail, reason}."),
                **ERRORS,
            },
        ),
    },
)
@extend_schema(tags=["catalogue"])
class MessageViewSet(ClearThrottleMessage, CatalogueViewSet):
    """Messages with their labels (`set:label`); the channel is their `channel` labels."""

    serializer_class = shapes.MessageSerializer
    update_serializer = shapes.MessageUpdateSerializer
    model = Message
    selector = staticmethod(messages_filtered)
    text_filters = ("label", "label_set")
    archive_service = staticmethod(message_archive)
    model_argument = "message"

    def create(self, request, *args, **kwargs):
        data = dict(self.body(shapes.MessageCreateSerializer))
        with service_errors():
            labels = labels_resolve(workspace=self.workspace, refs=data.pop("labels"))
            created = message_create(
                workspace=self.workspace, actor=request_actor(request), labels=labels, **data
            )
        return self.created(created)

    def update_service(self, obj, changes, version):
        refs = changes.pop("labels", None)
        labels = None if refs is None else labels_resolve(workspace=self.workspace, refs=refs)
        return message_update(
            workspace=self.workspace,
            actor=request_actor(self.request),
            message=obj,
            changes=changes,
            labels=labels,
            expected_version=version,
        )

    @action(detail=True, methods=["get"])
    def similar(self, request, *args, **kwargs):
        message = self.get_object()
        found = messages_similar(workspace=self.workspace, text=message.text, exclude_id=message.pk)
        return Response(
            {
                "threshold": NEAR_DUPLICATE_SIMILARITY,
                "similar": [
                    {
                        "id": item.message.pk,
                        "key": item.message.key,
                        "subject": item.message.subject,
                        "similarity": item.similarity,
                        "near_duplicate": item.near_duplicate,
                    }
                    for item in found
                ],
            }
        )

    @action(
        detail=False,
        methods=["post"],
        url_path="suggest-labels",
        throttle_classes=[LlmRateThrottle],
    )
    def suggest_labels(self, request, *args, **kwargs):
        data = self.body(shapes.SuggestLabelsRequestSerializer)
        try:
            labels = labels_suggest(workspace=self.workspace, text=data["text"])
        except LlmUnavailable as error:
            return Response({"detail": error.message, "reason": error.reason}, status=503)
        return Response({"labels": [f"{x.label_set.slug}:{x.slug}" for x in labels]})
