"""Attach the browser user's current workspace and membership to each request, and show times
in the workspace's time zone."""

from django.utils import timezone

from campaigns.tenancy.selectors import membership_current

SESSION_KEY = "workspace_id"
# Answers to machines keep UTC; pages show the workspace's local time.
UTC_PATHS = ("/api/", "/v1/")


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
        if request.workspace is not None and not request.path.startswith(UTC_PATHS):
            timezone.activate(request.workspace.time_zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            # The thread serves the next request, maybe another workspace's.
            timezone.deactivate()
