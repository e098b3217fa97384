"""Segment's way to authenticate: the write key as Basic user name, or `writeKey` in the body."""

from rest_framework import exceptions, permissions

from campaigns.models import ApiKey
from campaigns.tenancy.authentication import ApiKeyAuthentication, ApiKeyPrincipal
from campaigns.tenancy.services import api_key_authenticate
from memory.api.errors import bad_request
from memory.ingest.body import MalformedBody, read_body, write_key_in
from memory.ingest.limits import LimitExceeded


class SegmentWriteKeyAuthentication(ApiKeyAuthentication):
    """Authenticate by the Authorization header, else by the body's `writeKey`."""

    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None:
            return found
        try:
            write_key = write_key_in(read_body(request))
        except LimitExceeded as error:
            raise bad_request(error.message, limit=error.limit) from None
        except MalformedBody as error:
            raise bad_request(str(error)) from None
        if write_key is None:
            return None
        api_key = api_key_authenticate(raw_key=write_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked write key.")
        return ApiKeyPrincipal(api_key), api_key


class HasKeyScope(permissions.BasePermission):
    """Allow only API keys holding the view's `required_scope`: a browser session never writes.

    The Segment endpoints take no CSRF token, so a logged-in session must not count there,
    or any site could post events with the visitor's cookie.
    """

    def has_permission(self, request, view):
        scope = getattr(view, "required_scope", ApiKey.Scope.WRITE)
        return isinstance(request.auth, ApiKey) and request.auth.has_scope(scope)
