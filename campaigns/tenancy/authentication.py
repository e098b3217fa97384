"""API authentication by workspace key: Bearer/Token header, or HTTP Basic as Segment sends it."""

import base64
import binascii

from rest_framework import authentication, exceptions, permissions

from campaigns.models import ApiKey
from campaigns.tenancy.changes import Actor
from campaigns.tenancy.services import api_key_authenticate


class ApiKeyPrincipal:
    """The caller behind an API key: authenticated, bound to one workspace, no staff powers."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.workspace = api_key.workspace
        self.pk = None
        self.id = None
        self.username = f"api-key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username


def raw_key_from_header(header: str) -> str | None:
    """Return the key from an Authorization header, or None when it carries none."""
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme in {"bearer", "token"} and credentials:
        return credentials
    if scheme == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed(
                "Basic credentials are not valid base64."
            ) from None
        # Segment sends the write key as the user name and an empty password.
        return decoded.partition(":")[0] or None
    return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate a request by a workspace API key."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        raw_key = raw_key_from_header(header) if header else None
        if raw_key is None:
            return None
        api_key = api_key_authenticate(raw_key=raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return 'Basic realm="primer"'


def request_workspace(request):
    """Return the workspace a request acts on: its API key's, or the browser session's."""
    if isinstance(request.auth, ApiKey):
        return request.auth.workspace
    return getattr(request, "workspace", None)


class HasScope(permissions.BasePermission):
    """Allow API keys holding the view's `required_scope`; session users by membership role."""

    def has_permission(self, request, view):
        scope = getattr(view, "required_scope", ApiKey.Scope.READ)
        if isinstance(request.auth, ApiKey):
            return request.auth.has_scope(scope)
        membership = getattr(request, "membership", None)
        if membership is None:
            return False
        if scope == ApiKey.Scope.ADMIN:
            return membership.is_owner
        return scope == ApiKey.Scope.READ or membership.can_edit


def request_actor(request) -> Actor:
    """Return who a request acts as, for the audit: its API key, else the signed-in user."""
    if isinstance(request.auth, ApiKey):
        return Actor.of_api_key(request.auth)
    return Actor.of_user(request.user)
