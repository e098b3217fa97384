"""REST resources: campaigns, the workspace's settings, members, API keys and webhooks.

Thin ViewSets: an input serializer checks types and resolves slugs in the caller's workspace,
one service makes the change (audited, as the key or the signed-in user), and the answer is the
object as it is now. Reads need the `read` scope; writes `config` (members and keys: `admin`).
A stale `version` is a 409, a refused value a 400 naming the field, another workspace's object
a 404.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from campaigns.api.config_serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyInputSerializer,
    ApiKeySerializer,
    CampaignInputSerializer,
    CampaignSerializer,
    CampaignUpliftSerializer,
    MemberInputSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    WebhookInputSerializer,
    WebhookSecretSerializer,
    WebhookSerializer,
    WorkspaceInputSerializer,
    WorkspaceSerializer,
)
from campaigns.api.serializers import ErrorSerializer
from campaigns.catalogue.campaign_services import campaign_archive, campaign_create, campaign_update
from campaigns.models import ApiKey, Campaign, Membership, Webhook
from campaigns.tenancy.authentication import HasScope, request_actor, request_workspace
from campaigns.tenancy.changes import StaleEdit
from campaigns.tenancy.services import (
    api_key_issue,
    api_key_revoke,
    member_add,
    member_remove,
    member_role_change,
    workspace_settings_update,
)
from campaigns.webhooks.services import (
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
    webhook_update,
)
from memory.decision_selectors import campaign_uplift, uplift_summary
from memory.staleness import memory_stale_settings

ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, 'A value is refused: {"field": ["reason", ...]}.'),
    401: OpenApiResponse(description="Missing, wrong or revoked API key."),
    403: OpenApiResponse(description="The key lacks the scope, or the user the role."),
    404: OpenApiResponse(ErrorSerializer, "No such object in this workspace."),
}
STALE = {409: OpenApiResponse(ErrorSerializer, "Edited meanwhile: your version is stale.")}
ACTIVE = OpenApiParameter("active", bool, description="Only active (true) or archived (false).")


class ById(CursorPagination):
    ordering = "id"


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in {"true", "1", "yes"}:
        return True
    if value.lower() in {"false", "0", "no"}:
        return False
    raise DrfValidationError({"active": "Use true or false."})


class ConfigViewSet(viewsets.GenericViewSet):
    """Shared: the scope by method, the caller's workspace and actor, services' refusals."""

    permission_classes = [HasScope]
    pagination_class = ById
    write_scope = ApiKey.Scope.CONFIG

    @property
    def required_scope(self) -> str:
        return ApiKey.Scope.READ if self.request.method in SAFE_METHODS else self.write_scope

    @property
    def workspace(self):
        return request_workspace(self.request)

    @property
    def actor(self):
        return request_actor(self.request)

    def get_serializer_context(self):
        return super().get_serializer_context() | {"workspace": self.workspace}

    def handle_exception(self, exc):
        if isinstance(exc, StaleEdit):
            return Response(
                {"detail": str(exc), "current_version": exc.current_version},
                status=status.HTTP_409_CONFLICT,
            )
        if isinstance(exc, DjangoValidationError):
            exc = DrfValidationError(as_serializer_error(exc))
        return super().handle_exception(exc)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, **lookup):
        return Response(self.get_serializer(self.get_object()).data)

    def valid(self, serializer_class, *, partial: bool = False) -> dict:
        serializer = serializer_class(
            data=self.request.data, partial=partial, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


# Campaigns -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The workspace's campaigns", parameters=[ACTIVE]),
    retrieve=extend_schema(summary="One campaign"),
)
@extend_schema(tags=["campaigns"], responses={200: CampaignSerializer, **ERRORS})
class CampaignViewSet(ConfigViewSet):
    serializer_class = CampaignSerializer
    queryset = Campaign.unscoped.none()  # the schema's model; get_queryset scopes
    lookup_field = "slug"

    def get_queryset(self):
        campaigns = (
            Campaign.objects.for_workspace(self.workspace)
            .select_related("prompt_template", "workspace")
            .prefetch_related("messages")
        )
        active = _flag(self.request.query_params.get("active"))
        return campaigns if active is None else campaigns.filter(active=active)

    @extend_schema(
        summary="Create a campaign",
        request=CampaignInputSerializer,
        responses={201: CampaignSerializer, **ERRORS},
    )
    def create(self, request):
        data = self.valid(CampaignInputSerializer)
        data.pop("version", None)
        campaign = campaign_create(workspace=self.workspace, actor=self.actor, **data)
        return Response(self.get_serializer(campaign).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a campaign (send the version you read)",
        request=CampaignInputSerializer,
        responses={200: CampaignSerializer, **ERRORS, **STALE},
    )
    def partial_update(self, request, slug: str):
        campaign = self.get_object()
        data = self.valid(CampaignInputSerializer, partial=True)
        if "slug" in data and data.pop("slug") != campaign.slug:
            raise DrfValidationError({"slug": "A campaign's slug stays; create a new campaign."})
        saved = campaign_update(
            workspace=self.workspace,
            actor=self.actor,
            campaign=campaign,
            expected_version=data.pop("version", None),
            changes=data,
        )
        return Response(self.get_serializer(saved).data)

    @extend_schema(
        summary="A campaign's uplift per holdout arm (goal rate, revenue, off-policy value)",
        responses={200: CampaignUpliftSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def uplift(self, request, slug: str):
        return Response(uplift_summary(campaign_uplift(campaign=self.get_object())))

    @extend_schema(
        summary="Archive a campaign (PATCH active=true restores it)",
        responses={200: CampaignSerializer, **ERRORS},
    )
    def destroy(self, request, slug: str):
        archived = campaign_archive(
            workspace=self.workspace, actor=self.actor, campaign=self.get_object(), active=False
        )
        return Response(self.get_serializer(archived).data)


# The workspace ---------------------------------------------------------------------------------


@extend_schema(tags=["workspace"])
class WorkspaceViewSet(ConfigViewSet):
    """The caller's workspace, a singleton: GET and PATCH /api/v1/workspace."""

    serializer_class = WorkspaceSerializer
    pagination_class = None

    def _answer(self, workspace):
        stale = memory_stale_settings(workspace=workspace)
        workspace.memory_stale = [setting.field for setting in stale]
        return Response(WorkspaceSerializer(workspace).data)

    @extend_schema(
        summary="The workspace's settings", responses={200: WorkspaceSerializer, **ERRORS}
    )
    def retrieve(self, request):
        return self._answer(self.workspace)

    @extend_schema(
        summary="Change the workspace's settings (editors and owners; send the version you read)",
        request=WorkspaceInputSerializer,
        responses={200: WorkspaceSerializer, **ERRORS, **STALE},
    )
    def partial_update(self, request):
        membership = getattr(request, "membership", None)
        if not isinstance(request.auth, ApiKey) and not (membership and membership.can_edit):
            raise PermissionDenied("Viewers cannot change the workspace's settings.")
        data = self.valid(WorkspaceInputSerializer, partial=True)
        saved = workspace_settings_update(
            workspace=self.workspace,
            actor=self.actor,
            expected_version=data.pop("version", None),
            changes=data,
        )
        return self._answer(saved)


# Members and keys ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The workspace's members"),
    retrieve=extend_schema(summary="One member"),
)
@extend_schema(tags=["members"], responses={200: MemberSerializer, **ERRORS})
class MemberViewSet(ConfigViewSet):
    serializer_class = MemberSerializer
    queryset = Membership.unscoped.none()  # the schema's model; get_queryset scopes
    lookup_value_regex = r"\d+"

    @property
    def required_scope(self) -> str:
        return ApiKey.Scope.ADMIN

    def get_queryset(self):
        return Membership.objects.for_workspace(self.workspace).select_related("user")

    @extend_schema(
        summary="Give an existing user a role",
        request=MemberInputSerializer,
        responses={201: MemberSerializer, **ERRORS},
    )
    def create(self, request):
        data = self.valid(MemberInputSerializer)
        added = member_add(workspace=self.workspace, actor=self.actor, **data)
        return Response(self.get_serializer(added).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change a member's role", request=MemberRoleSerializer)
    def partial_update(self, request, pk: str):
        data = self.valid(MemberRoleSerializer)
        changed = member_role_change(
            workspace=self.workspace, actor=self.actor, membership=self.get_object(), **data
        )
        return Response(self.get_serializer(changed).data)

    @extend_schema(
        summary="Remove a member (never the last owner)", responses={204: None, **ERRORS}
    )
    def destroy(self, request, pk: str):
        member_remove(workspace=self.workspace, actor=self.actor, membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="The workspace's API keys (prefixes; secrets are not kept)"),
    retrieve=extend_schema(summary="One API key"),
)
@extend_schema(tags=["api-keys"], responses={200: ApiKeySerializer, **ERRORS})
class ApiKeyViewSet(ConfigViewSet):
    serializer_class = ApiKeySerializer
    queryset = ApiKey.unscoped.none()  # the schema's model; get_queryset scopes
    lookup_value_regex = r"\d+"

    @property
    def required_scope(self) -> str:
        return ApiKey.Scope.ADMIN

    def get_queryset(self):
        return ApiKey.objects.for_workspace(self.workspace).select_related("created_by")

    @extend_schema(
        summary="Create a key with scopes your key holds (never admin); the secret shows once",
        request=ApiKeyInputSerializer,
        responses={201: ApiKeyCreatedSerializer, **ERRORS},
    )
    def create(self, request):
        data = self.valid(ApiKeyInputSerializer)
        api_key, secret = api_key_issue(workspace=self.workspace, actor=self.actor, **data)
        api_key.secret = secret
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke a key at once (it stays listed)")
    def destroy(self, request, pk: str):
        api_key = self.get_object()
        api_key_revoke(api_key=api_key, actor=self.actor)
        return Response(self.get_serializer(api_key).data)


# Webhooks --------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The workspace's webhooks", parameters=[ACTIVE]),
    retrieve=extend_schema(summary="One webhook"),
)
@extend_schema(tags=["webhooks"], responses={200: WebhookSerializer, **ERRORS})
class WebhookViewSet(ConfigViewSet):
    serializer_class = WebhookSerializer
    queryset = Webhook.unscoped.none()  # the schema's model; get_queryset scopes
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        hooks = Webhook.objects.for_workspace(self.workspace).select_related(
            "campaign", "workspace"
        )
        active = _flag(self.request.query_params.get("active"))
        return hooks if active is None else hooks.filter(active=active)

    @extend_schema(
        summary="Register a webhook; its signing secret is in the answer",
        request=WebhookInputSerializer,
        responses={201: WebhookSecretSerializer, **ERRORS},
    )
    def create(self, request):
        data = self.valid(WebhookInputSerializer)
        data.pop("version", None)
        active = data.pop("active", True)
        hook = webhook_create(workspace=self.workspace, actor=self.actor, **data)
        if not active:
            hook = webhook_update(
                workspace=self.workspace,
                actor=self.actor,
                webhook=hook,
                expected_version=None,
                changes={"active": False},
            )
        return Response(WebhookSecretSerializer(hook).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a webhook (send the version you read)",
        request=WebhookInputSerializer,
        responses={200: WebhookSerializer, **ERRORS, **STALE},
    )
    def partial_update(self, request, pk: str):
        data = self.valid(WebhookInputSerializer, partial=True)
        saved = webhook_update(
            workspace=self.workspace,
            actor=self.actor,
            webhook=self.get_object(),
            expected_version=data.pop("version", None),
            changes=data,
        )
        return Response(self.get_serializer(saved).data)

    @extend_schema(summary="Delete a webhook and its log", responses={204: None, **ERRORS})
    def destroy(self, request, pk: str):
        webhook_delete(webhook=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Give the webhook a new signing secret (the old one stops verifying)",
        request=None,
        responses={200: WebhookSecretSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk: str):
        rotated = webhook_rotate_secret(
            workspace=self.workspace, actor=self.actor, webhook=self.get_object()
        )
        return Response(WebhookSecretSerializer(rotated).data)
