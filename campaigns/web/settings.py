"""The owner's pages: workspace settings, members and API keys. Every member reads them; only
owners change anything (others get a 403). Thin: a form validates, one service runs."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from campaigns.models import ApiKey, Membership
from campaigns.tenancy.changes import Actor, StaleEdit
from campaigns.tenancy.decorators import viewers_cannot, workspace_required
from campaigns.tenancy.forms import (
    ApiKeyCreateForm,
    MemberAddForm,
    MemberRoleForm,
    WorkspaceSettingsForm,
)
from campaigns.tenancy.selectors import api_keys_of_workspace, members_of_workspace
from campaigns.tenancy.services import (
    MEMORY_FIELDS,
    SETTINGS_FIELDS,
    api_key_issue,
    api_key_revoke,
    member_add,
    member_remove,
    member_role_change,
    workspace_settings_update,
)
from campaigns.web.support import form_refused, int_or_none
from memory.staleness import memory_stale_settings


def owners_only() -> HttpResponseForbidden:
    return HttpResponseForbidden("Only an owner can change this.")


@workspace_required
@require_http_methods(["GET", "POST"])
def workspace_settings(request):
    workspace = request.workspace
    if request.method == "POST":
        if not request.membership.can_edit:
            return viewers_cannot()
        form = WorkspaceSettingsForm(request.POST)
        if form.is_valid():
            try:
                saved = workspace_settings_update(
                    workspace=workspace,
                    actor=Actor.of_user(request.user),
                    expected_version=form.cleaned_data["version"],
                    changes=form.changes(),
                )
            except (ValidationError, StaleEdit) as refused:
                form_refused(form, refused)
            else:
                messages.success(request, f"Saved the settings of {saved.name}.")
                return redirect("workspace-settings")
    else:
        initial = {name: getattr(workspace, name) for name in SETTINGS_FIELDS}
        form = WorkspaceSettingsForm(initial=initial | {"version": workspace.version})
    return render(
        request,
        "campaigns/settings/workspace.html",
        {
            "form": form,
            "stale": memory_stale_settings(workspace=workspace),
            "memory_fields": MEMORY_FIELDS,
        },
    )


@workspace_required
@require_http_methods(["GET", "POST"])
def members(request):
    workspace = request.workspace
    add_form = MemberAddForm()
    if request.method == "POST":
        if not request.membership.is_owner:
            return owners_only()
        actor = Actor.of_user(request.user)
        action = request.POST.get("action")
        try:
            if action == "add":
                add_form = MemberAddForm(request.POST)
                if add_form.is_valid():
                    added = member_add(workspace=workspace, actor=actor, **add_form.cleaned_data)
                    messages.success(request, f"Added {added.user} as {added.role}.")
                    return redirect("members")
            else:
                membership = (
                    Membership.objects.for_workspace(workspace)
                    .select_related("user")
                    .filter(pk=int_or_none(request.POST.get("membership")))
                    .first()
                )
                if membership is None:
                    messages.error(request, "No such member in this workspace.")
                elif action == "remove":
                    member_remove(workspace=workspace, actor=actor, membership=membership)
                    messages.success(request, f"Removed {membership.user}.")
                else:
                    role_form = MemberRoleForm(request.POST)
                    if role_form.is_valid():
                        member_role_change(
                            workspace=workspace,
                            actor=actor,
                            membership=membership,
                            role=role_form.cleaned_data["role"],
                        )
                        messages.success(request, f"{membership.user} is now {membership.role}.")
                    else:
                        messages.error(request, "Choose owner, editor or viewer.")
                return redirect("members")
        except ValidationError as refused:
            if action == "add":
                form_refused(add_form, refused)
            else:
                messages.error(request, " ".join(refused.messages))
                return redirect("members")
    return render(
        request,
        "campaigns/settings/members.html",
        {
            "memberships": members_of_workspace(workspace=workspace),
            "add_form": add_form,
            "roles": Membership.Role.choices,
        },
    )


@workspace_required
@require_http_methods(["GET", "POST"])
def api_keys(request):
    workspace = request.workspace
    form = ApiKeyCreateForm()
    new_key = None
    if request.method == "POST":
        if not request.membership.is_owner:
            return owners_only()
        actor = Actor.of_user(request.user)
        if request.POST.get("action") == "revoke":
            found = api_keys_of_workspace(workspace=workspace).filter(
                pk=int_or_none(request.POST.get("key"))
            )
            api_key = found.first()
            if api_key is None:
                messages.error(request, "No such key in this workspace.")
            else:
                api_key_revoke(api_key=api_key, actor=actor)
                messages.success(request, f"Revoked {api_key.prefix}….")
            return redirect("api-keys")
        form = ApiKeyCreateForm(request.POST)
        if form.is_valid():
            try:
                api_key, raw_key = api_key_issue(
                    workspace=workspace, actor=actor, **form.cleaned_data
                )
            except ValidationError as refused:
                form_refused(form, refused)
            else:
                # Shown once, in this answer only: the database keeps just a hash.
                new_key = {"key": api_key, "secret": raw_key}
                form = ApiKeyCreateForm()
    return render(
        request,
        "campaigns/settings/keys.html",
        {
            "api_keys": api_keys_of_workspace(workspace=workspace).select_related("created_by"),
            "form": form,
            "new_key": new_key,
            "scopes": ApiKey.Scope,
        },
    )
