"""Guards for pages: a member of the current workspace, and a role that may change things."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden
from django.shortcuts import render


def workspace_required(view):
    """Require a logged-in user with a current workspace; otherwise say they have none."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.workspace is None:
            return render(request, "campaigns/no_workspace.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def viewers_cannot() -> HttpResponseForbidden:
    return HttpResponseForbidden("Viewers cannot change this; ask an editor or owner.")


def editor_required(view):
    """Let owners and editors through; viewers get a 403 saying why."""

    @workspace_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.membership.can_edit:
            return viewers_cannot()
        return view(request, *args, **kwargs)

    return wrapper


def owner_required(view):
    """Let owners through; editors and viewers get a 403 saying why."""

    @workspace_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.membership.is_owner:
            return HttpResponseForbidden("Only an owner can change this.")
        return view(request, *args, **kwargs)

    return wrapper
