"""Ingestion endpoints: Segment-compatible `/v1/*`, and the native `/api/v1/events`.

Thin: read the body within the limits, call `events_ingest`, shape the answer. Bodies are read
raw (no DRF parser) so the hot path decodes each event once, with msgspec.
"""

import logging

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import ApiKey
from campaigns.tenancy.authentication import HasScope, request_workspace
from memory.api import schema  # noqa: F401 (registers the authentication schemes)
from memory.api.authentication import HasKeyScope, SegmentWriteKeyAuthentication
from memory.api.errors import (
    DATABASE_CONNECTION_ERRORS,
    RETRY_AFTER_S,
    IngestUnavailable,
    bad_request,
)
from memory.api.serializers import (
    EventSerializer,
    EventsIngestResponseSerializer,
    IngestErrorSerializer,
    SegmentBatchResponseSerializer,
    SegmentBatchSerializer,
    SegmentEventSerializer,
    SegmentSuccessSerializer,
)
from memory.api.throttling import ApiKeyRateThrottle
from memory.ingest.body import MalformedBody, native_events, read_body, segment_batch, single_event
from memory.ingest.limits import LimitExceeded
from memory.ingest.segment import Inherited
from memory.selectors import events_of_workspace
from memory.services import REJECTED, events_ingest

logger = logging.getLogger(__name__)

SEGMENT_ERRORS = {
    400: OpenApiResponse(IngestErrorSerializer, "Malformed JSON or over a limit (named)."),
    401: OpenApiResponse(description="Missing, wrong or revoked write key."),
    403: OpenApiResponse(description="The key lacks the write scope."),
    429: OpenApiResponse(description="Rate limited; retry after Retry-After seconds."),
    503: OpenApiResponse(
        IngestErrorSerializer, "The database connection was lost; retry after Retry-After."
    ),
}


class IngestView(APIView):
    """Shared by the write endpoints: a write-scoped key, rate limited per key."""

    permission_classes = [HasScope]
    throttle_classes = [ApiKeyRateThrottle]
    required_scope = ApiKey.Scope.WRITE
    # The body is read raw as JSON whatever its Content-Type; the schema says JSON only.
    parser_classes = [JSONParser]

    def handle_exception(self, exc):
        if isinstance(exc, DATABASE_CONNECTION_ERRORS):
            logger.warning("Ingestion answered 503: the database connection was lost: %s", exc)
            exc = IngestUnavailable()
        response = super().handle_exception(exc)
        if isinstance(exc, IngestUnavailable):
            response["Retry-After"] = str(RETRY_AFTER_S)
        return response

    def body(self, request, decode):
        try:
            return decode(read_body(request))
        except LimitExceeded as error:
            raise bad_request(error.message, limit=error.limit) from None
        except MalformedBody as error:
            raise bad_request(str(error)) from None


class SegmentCallView(IngestView):
    """POST /v1/track, /v1/identify, /v1/page, /v1/screen: one call, answered as Segment does."""

    authentication_classes = [SegmentWriteKeyAuthentication]
    permission_classes = [HasKeyScope]  # keys only: no session, so no CSRF to forge
    event_type = "track"

    def post(self, request):
        received_at = timezone.now()
        event = self.body(request, single_event)
        result = events_ingest(
            workspace=request_workspace(request),
            payloads=[event],
            received_at=received_at,
            inherited=Inherited(type=self.event_type, force_type=True),
        )
        if result.rejections:
            rejection = result.rejections[0]
            raise bad_request(
                f"{rejection.field}: {rejection.reason}" if rejection.field else rejection.reason,
                field=rejection.field,
            )
        return Response({"success": True})


def _segment_call_schema(event_type: str, summary: str):
    return extend_schema_view(
        post=extend_schema(
            operation_id=f"segment_{event_type}",
            summary=summary,
            tags=["Segment-compatible"],
            request=SegmentEventSerializer,
            responses={200: SegmentSuccessSerializer, **SEGMENT_ERRORS},
        )
    )


@_segment_call_schema("track", "Record what a customer did (Segment track).")
class SegmentTrackView(SegmentCallView):
    event_type = "track"


@_segment_call_schema("identify", "Create or update a customer and merge their traits.")
class SegmentIdentifyView(SegmentCallView):
    event_type = "identify"


@_segment_call_schema("page", "Record a page view, stored as a `Page Viewed` event.")
class SegmentPageView(SegmentCallView):
    event_type = "page"


@_segment_call_schema("screen", "Record an app screen view, stored as `Screen Viewed`.")
class SegmentScreenView(SegmentCallView):
    event_type = "screen"


class SegmentBatchView(IngestView):
    """POST /v1/batch: up to 2,500 calls; invalid ones are skipped and listed, as Segment does."""

    authentication_classes = [SegmentWriteKeyAuthentication]
    permission_classes = [HasKeyScope]  # keys only: no session, so no CSRF to forge

    @extend_schema(
        operation_id="segment_batch",
        summary="Send many calls at once (Segment batch).",
        tags=["Segment-compatible"],
        request=SegmentBatchSerializer,
        responses={200: SegmentBatchResponseSerializer, **SEGMENT_ERRORS},
    )
    def post(self, request):
        received_at = timezone.now()
        batch = self.body(request, segment_batch)
        result = events_ingest(
            workspace=request_workspace(request),
            payloads=batch.items,
            received_at=received_at,
            inherited=Inherited(context=batch.context, sent_at=batch.sent_at),
        )
        answer: dict = {"success": True}
        if result.rejections:
            answer["rejected"] = [rejection.as_dict() for rejection in result.rejections]
        return Response(answer)


class EventPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")
    results = EventSerializer(many=True)


class EventsPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"


class EventsView(IngestView):
    """GET lists the workspace's events (read scope); POST ingests them (write scope)."""

    @property
    def required_scope(self):
        return ApiKey.Scope.READ if self.request.method == "GET" else ApiKey.Scope.WRITE

    @extend_schema(
        operation_id="events_list",
        summary="List the workspace's events, newest first.",
        tags=["Events"],
        parameters=[
            OpenApiParameter("customer", str, description="Only this customer's (external id)."),
            OpenApiParameter("cursor", str, description="The page `next` or `previous` named."),
            OpenApiParameter("page_size", int, description="Events per page (at most 1,000)."),
        ],
        responses={200: EventPageSerializer},
    )
    def get(self, request):
        events = events_of_workspace(
            workspace=request_workspace(request), customer=request.query_params.get("customer")
        )
        paginator = EventsPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(EventSerializer(page, many=True).data)

    @extend_schema(
        operation_id="events_ingest",
        summary="Send one event or a list; the answer says what became of each, by index.",
        description=(
            "The same objects as Segment's (type defaults to track). Limits: 500 KB per "
            "request, 2,500 events, 32 KB per event (an oversize event is rejected by index)."
        ),
        tags=["Events"],
        request=SegmentEventSerializer(many=True),
        responses={
            200: EventsIngestResponseSerializer,
            **{code: SEGMENT_ERRORS[code] for code in (400, 401, 403, 429, 503)},
        },
    )
    def post(self, request):
        received_at = timezone.now()
        items = self.body(request, native_events)
        result = events_ingest(
            workspace=request_workspace(request),
            payloads=items,
            received_at=received_at,
            inherited=Inherited(type="track"),
            per_index=True,
        )
        reasons = {rejection.index: rejection for rejection in result.rejections}
        results = []
        for index, status in enumerate(result.statuses):
            entry = {"index": index, "status": status}
            if status == REJECTED:
                entry["field"] = reasons[index].field
                entry["reason"] = reasons[index].reason
            results.append(entry)
        return Response(
            {
                "received": result.received,
                "stored": result.stored,
                "duplicates": result.duplicates,
                "identified": result.identified,
                "rejected": len(result.rejections),
                "unknown_message_keys": result.unknown_message_keys,
                "results": results,
            }
        )
