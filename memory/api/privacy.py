"""GET /api/v1/customers/{id}/data exports one customer's data; DELETE erases it (and with
?suppress=true refuses the id's later events). /api/v1/suppressions/{id}: whether an id is
suppressed (GET), suppress an id that has no data yet (PUT), lift a suppression (DELETE);
POST /api/v1/suppressions suppresses a list of ids at once (an opt-out list)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import ApiKey
from campaigns.tenancy.authentication import HasScope, request_actor, request_workspace
from memory.models import Customer
from memory.privacy import (
    ERASE_AT_ONCE,
    SUPPRESS_AT_ONCE,
    CustomerStored,
    TooManyToErase,
    customer_data_export,
    customer_erase,
    customer_suppress,
    customer_suppression_lift,
    customers_erase_and_suppress,
    customers_suppress,
)
from memory.selectors import customer_missing, customer_suppression


class CustomerErasedSerializer(serializers.Serializer):
    customer = serializers.CharField()
    deleted = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows deleted per table."
    )
    suppressed = serializers.BooleanField(help_text="The id's later events are refused.")


class EraseQuerySerializer(serializers.Serializer):
    suppress = serializers.BooleanField(
        default=False,
        help_text="Also refuse every later event for this id (until an owner lifts it).",
    )


class SuppressListSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.CharField(
            max_length=Customer._meta.get_field("external_id").max_length, trim_whitespace=False
        ),
        min_length=1,
        max_length=SUPPRESS_AT_ONCE,
        help_text=f"Customer ids, 1 to {SUPPRESS_AT_ONCE:,} at once.",
    )
    erase = serializers.BooleanField(
        default=False,
        help_text=f"Also delete, with suppression, those that have data here (at most "
        f"{ERASE_AT_ONCE} per call; each erased in its own transaction, audited): a deletion "
        "list.",
    )


class SuppressedListSerializer(serializers.Serializer):
    suppressed = serializers.ListField(child=serializers.CharField(), help_text="Newly.")
    already = serializers.ListField(child=serializers.CharField(), help_text="Before this call.")
    stored = serializers.ListField(
        child=serializers.CharField(),
        help_text="Customers with data here, not suppressed: erase them with `erase` or "
        "`DELETE /customers/{id}/data?suppress=true`.",
    )
    erased = CustomerErasedSerializer(many=True, help_text="With `erase`: who was deleted.")


class SuppressionSerializer(serializers.Serializer):
    customer = serializers.CharField()
    suppressed = serializers.BooleanField()
    suppressed_at = serializers.DateTimeField(allow_null=True)
    suppressed_by = serializers.CharField(allow_blank=True)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class CustomerDataView(APIView):
    permission_classes = [HasScope]

    @property
    def required_scope(self):
        return ApiKey.Scope.WRITE if self.request.method == "DELETE" else ApiKey.Scope.READ

    @extend_schema(
        operation_id="customer_data_export",
        summary="Everything stored about one customer, as JSON (audited)",
        description="The customer's fields and, per table that refers to them, every row: "
        "events, derived memory, prompt records. Read scope.",
        responses={200: OpenApiTypes.OBJECT, 404: DetailSerializer},
        tags=["Privacy"],
    )
    def get(self, request, external_id: str):
        try:
            data = customer_data_export(
                workspace=request_workspace(request),
                external_id=external_id,
                actor=request_actor(request),
            )
        except Customer.DoesNotExist:
            raise NotFound(
                customer_missing(workspace=request_workspace(request), external_id=external_id)
            ) from None
        response = Response(data)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        operation_id="customer_data_erase",
        summary="Delete a customer with their events, memory and prompt records (audited)",
        description="One transaction; webhooks receive a `customer.deleted` event. Write scope. "
        "Events sent for the same id later create the customer again, unless `suppress=true`: "
        "then they are refused (each with its reason) until the suppression is lifted.",
        parameters=[EraseQuerySerializer],
        responses={
            200: CustomerErasedSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, "`suppress` is not a boolean."),
            404: OpenApiResponse(DetailSerializer, "No such customer in this workspace."),
        },
        tags=["Privacy"],
    )
    def delete(self, request, external_id: str):
        query = EraseQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            erased = customer_erase(
                workspace=request_workspace(request),
                external_id=external_id,
                actor=request_actor(request),
                suppress=query.validated_data["suppress"],
            )
        except Customer.DoesNotExist:
            raise NotFound(
                customer_missing(workspace=request_workspace(request), external_id=external_id)
            ) from None
        return Response(erased.as_dict())


class SuppressionView(APIView):
    permission_classes = [HasScope]

    @property
    def required_scope(self):
        return ApiKey.Scope.READ if self.request.method == "GET" else ApiKey.Scope.WRITE

    @extend_schema(
        operation_id="suppression_read",
        summary="Whether events for an id are refused",
        description="Read scope. The workspace keeps a digest of each suppressed id, not the id.",
        responses={200: SuppressionSerializer, 404: DetailSerializer},
        tags=["Privacy"],
    )
    def get(self, request, external_id: str):
        found = customer_suppression(workspace=request_workspace(request), external_id=external_id)
        if found is None:
            raise NotFound(f"{external_id!r} is not suppressed in this workspace.")
        return Response(_suppression(external_id, found))

    @extend_schema(
        operation_id="suppression_create",
        summary="Refuse every event for an id that has no data here yet (audited)",
        description="For an opt-out received before the person's first event. Write scope. A "
        "customer already stored is erased with `DELETE /customers/{id}/data?suppress=true`.",
        request=None,
        responses={
            200: OpenApiResponse(SuppressionSerializer, "Already suppressed."),
            201: OpenApiResponse(SuppressionSerializer, "Suppressed."),
            409: OpenApiResponse(DetailSerializer, "A customer with this id is stored."),
        },
        tags=["Privacy"],
    )
    def put(self, request, external_id: str):
        workspace = request_workspace(request)
        try:
            created = customer_suppress(
                workspace=workspace, external_id=external_id, actor=request_actor(request)
            )
        except CustomerStored as stored:
            return Response({"detail": str(stored)}, status=status.HTTP_409_CONFLICT)
        found = customer_suppression(workspace=workspace, external_id=external_id)
        return Response(
            _suppression(external_id, found),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="suppression_lift",
        summary="Accept events for a suppressed id again (audited)",
        description="Write scope. Events sent while it was suppressed stay refused; send them "
        "again.",
        responses={
            204: OpenApiResponse(None, "Lifted."),
            404: OpenApiResponse(DetailSerializer, "The id is not suppressed."),
        },
        tags=["Privacy"],
    )
    def delete(self, request, external_id: str):
        lifted = customer_suppression_lift(
            workspace=request_workspace(request),
            external_id=external_id,
            actor=request_actor(request),
        )
        if not lifted:
            raise NotFound(f"{external_id!r} is not suppressed in this workspace.")
        return Response(status=status.HTTP_204_NO_CONTENT)


def _suppression(external_id: str, found) -> dict:
    return {
        "customer": external_id,
        "suppressed": True,
        "suppressed_at": found.suppressed_at,
        "suppressed_by": found.suppressed_by,
    }


class SuppressionListView(APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.WRITE

    @extend_schema(
        operation_id="suppressions_create",
        summary="Refuse every event for a list of ids (audited); with `erase`, delete those "
        "with data first",
        description="An opt-out list, in one transaction. Write scope. Ids of stored customers "
        "are not suppressed and are listed under `stored`, unless `erase` is true: then each is "
        "deleted with suppression (a deletion list) and listed under `erased`.",
        request=SuppressListSerializer,
        responses={200: SuppressedListSerializer, 400: OpenApiTypes.OBJECT},
        tags=["Privacy"],
    )
    def post(self, request):
        given = SuppressListSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        workspace, actor = request_workspace(request), request_actor(request)
        ids, erased = given.validated_data["ids"], []
        if given.validated_data["erase"]:
            try:
                done, erased = customers_erase_and_suppress(
                    workspace=workspace, external_ids=ids, actor=actor
                )
            except TooManyToErase as too_many:
                return Response({"ids": [str(too_many)]}, status=status.HTTP_400_BAD_REQUEST)
        else:
            done = customers_suppress(workspace=workspace, external_ids=ids, actor=actor)
        return Response(
            {
                "suppressed": done.added,
                "already": done.already,
                "stored": done.stored,
                "erased": [item.as_dict() for item in erased],
            }
        )
