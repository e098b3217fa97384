"""Attach the browser user's current workspace and membership to each request."""

from django.utils.functional import SimpleLazyObject

from campaigns.selectors import membership_current

SESSION_KEY = "workspace_id"


class CurrentWorkspaceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: _membership(request))
        request.workspace = SimpleLazyObject(lambda: _workspace(request))
        return self.get_response(request)


def _membership(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return membership_current(user=user, workspace_id=request.session.get(SESSION_KEY))


def _workspace(request):
    membership = request.membership
    return membership.workspace if membership else None
