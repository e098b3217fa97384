"""Pages for what the marketer configures. Thin: read with a selector, render."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from campaigns.middleware import SESSION_KEY
from campaigns.selectors import (
    api_keys_of_workspace,
    label_sets_with_labels,
    memberships_of_user,
    messages_with_labels,
)


def workspace_required(view):
    """Require a logged-in user with a current workspace; otherwise say they have none."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.workspace is None:
            return render(request, "campaigns/no_workspace.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


@workspace_required
def home(request):
    workspace = request.workspace
    return render(
        request,
        "campaigns/home.html",
        {
            "label_sets": label_sets_with_labels(workspace=workspace),
            "messages_list": messages_with_labels(workspace=workspace),
            "api_keys": api_keys_of_workspace(workspace=workspace),
        },
    )


@login_required
@require_POST
def workspace_switch(request):
    workspace_id = request.POST.get("workspace_id", "")
    membership = (
        memberships_of_user(user=request.user).filter(workspace_id=workspace_id).first()
        if workspace_id.isdigit()
        else None
    )
    if membership is not None:
        request.session[SESSION_KEY] = membership.workspace_id
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("home")
    return HttpResponseRedirect(next_url)
