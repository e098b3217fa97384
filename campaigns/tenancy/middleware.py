"""Attach the browser user's current workspace and membership to each request."""

from campaigns.tenancy.selectors import membership_current

SESSION_KEY = "workspace_id"


class CurrentWorkspaceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        membership = None
        if user is not None and user.is_authenticated:
            membership = membership_current(
                user=user, workspace_id=request.session.get(SESSION_KEY)
            )
        request.membership = membership
        request.workspace = membership.workspace if membership else None
        return self.get_response(request)
