"""Pages for what the marketer configures. Thin: read with a selector, render."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from campaigns.catalogue.selectors import label_sets_with_labels, messages_with_labels
from campaigns.tenancy.decorators import workspace_required
from campaigns.tenancy.middleware import SESSION_KEY
from campaigns.tenancy.selectors import api_keys_of_workspace, memberships_of_user


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
