"""GET /api/v1/customers/{id}/data exports one customer's data; DELETE erases it."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import ApiKey
from campaigns.tenancy.authentication import HasScope, request_workspace
from campaigns.tenancy.changes import Actor
from memory.models import Customer
from memory.privacy import customer_data_export, customer_erase


class CustomerErasedSerializer(serializers.Serializer):
    customer = serializers.CharField()
    deleted = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows deleted per table."
    )


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _actor(request) -> Actor:
    if isinstance(request.auth, ApiKey):
        return Actor.of_api_key(request.auth)
    return Actor.of_user(request.user)


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
                workspace=request_workspace(request), external_id=external_id, actor=_actor(request)
            )
        except Customer.DoesNotExist:
            raise NotFound(f"No customer {external_id!r} in this workspace.") from None
        response = Response(data)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        operation_id="customer_data_erase",
        summary="Delete a customer with their events, memory and prompt records (audited)",
        description="One transaction; webhooks receive a `customer.deleted` event. Write scope. "
        "Events sent for the same id later create the customer again.",
        responses={
            200: CustomerErasedSerializer,
            404: OpenApiResponse(DetailSerializer, "No such customer in this workspace."),
        },
        tags=["Privacy"],
    )
    def delete(self, request, external_id: str):
        try:
            erased = customer_erase(
                workspace=request_workspace(request), external_id=external_id, actor=_actor(request)
            )
        except Customer.DoesNotExist:
            raise NotFound(f"No customer {external_id!r} in this workspace.") from None
        return Response(erased.as_dict())
