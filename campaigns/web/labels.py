"""Pages for the taxonomy: label sets and labels, with what the last run says about each label.

Thin: a form checks shapes, one service changes, a page renders. Members read; editors and
owners change (viewers see no controls, and their POSTs get a 403).
"""

from __future__ import annotations

import math

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.catalogue.forms import LabelForm, LabelSetForm
from campaigns.catalogue.labels import (
    label_archive,
    label_create,
    label_set_archive,
    label_set_create,
    label_set_update,
    label_update,
)
from campaigns.catalogue.selectors import CONTENT_GAP_MIN_MESSAGES, taxonomy_overview
from campaigns.models import Label, LabelSet
from campaigns.prompts.preview import effect_preview
from campaigns.tenancy.changes import Actor, StaleEdit
from campaigns.tenancy.decorators import editor_required, viewers_cannot, workspace_required


def _labels_page(request, *, set_form=None, label_form=None, status=200):
    workspace = request.workspace
    return render(
        request,
        "campaigns/catalogue/labels.html",
        {
            "overview": taxonomy_overview(workspace=workspace),
            "gap_threshold": CONTENT_GAP_MIN_MESSAGES,
            "set_form": set_form or LabelSetForm(prefix="set"),
            "label_form": label_form or LabelForm(prefix="label", workspace=workspace),
        },
        status=status,
    )


@workspace_required
@require_GET
def labels(request):
    return _labels_page(request)


@editor_required
@require_POST
def label_set_new(request):
    form = LabelSetForm(request.POST, prefix="set")
    if form.is_valid():
        data = form.cleaned_data
        try:
            created = label_set_create(
                workspace=request.workspace,
                actor=Actor.of_user(request.user),
                slug=data["slug"],
                name=data["name"],
                description=data["description"],
                multiple=data["multiple"],
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Created the label set {created.name}.")
            return redirect("catalogue-labels")
    return _labels_page(request, set_form=form, status=400)


@editor_required
@require_POST
def label_new(request):
    workspace = request.workspace
    form = LabelForm(request.POST, prefix="label", workspace=workspace)
    if form.is_valid():
        data = form.cleaned_data
        try:
            created = label_create(
                workspace=workspace,
                actor=Actor.of_user(request.user),
                label_set=data["label_set"],
                slug=data["slug"],
                name=data["name"],
                prompt_phrase=data["prompt_phrase"],
                description=data["description"],
                boost=data["boost"],
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Created the label {created}.")
            return redirect("catalogue-labels")
    return _labels_page(request, label_form=form, status=400)


def _edit(request, *, obj, make_form, update, fields: list[str], template: str, context: dict):
    """Show an edit form; on POST call the update service with its fields and the version read.

    A stale version or a service's refusal comes back on the form, beside its field.
    """
    if request.method == "POST":
        if not request.membership.can_edit:
            return viewers_cannot()
        form = make_form(request.POST)
        if form.is_valid():
            try:
                update(
                    workspace=request.workspace,
                    actor=Actor.of_user(request.user),
                    changes={name: form.cleaned_data[name] for name in fields},
                    expected_version=form.cleaned_data["version"] or obj.version,
                )
            except StaleEdit as error:
                form.add_error(None, str(error))
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(request, f"Saved {obj._meta.verbose_name} {obj.slug}.")
                return redirect("catalogue-labels")
    else:
        initial = {name: getattr(obj, name) for name in fields}
        form = make_form(None, initial=initial | {"version": obj.version})
    return render(request, template, context | {"form": form}, status=400 if form.errors else 200)


@workspace_required
@require_http_methods(["GET", "POST"])
def label_set_edit(request, slug: str):
    label_set = get_object_or_404(LabelSet.objects.for_workspace(request.workspace), slug=slug)
    return _edit(
        request,
        obj=label_set,
        make_form=lambda data, **kw: LabelSetForm(data, editing=True, **kw),
        update=lambda **kw: label_set_update(label_set=label_set, **kw),
        fields=["name", "description", "multiple"],
        template="campaigns/catalogue/label_set_edit.html",
        context={"label_set": label_set},
    )


@workspace_required
@require_http_methods(["GET", "POST"])
def label_edit(request, pk: int):
    workspace = request.workspace
    label = get_object_or_404(
        Label.objects.for_workspace(workspace).select_related("label_set"), pk=pk
    )
    return _edit(
        request,
        obj=label,
        make_form=lambda data, **kw: LabelForm(data, workspace=workspace, editing=True, **kw),
        update=lambda **kw: label_update(label=label, **kw),
        fields=["name", "prompt_phrase", "description", "boost"],
        template="campaigns/catalogue/label_edit.html",
        context={"label": label},
    )


@workspace_required
@require_POST
def label_preview_effect(request, pk: int):
    """Preview what the boost in the form would do to customers' next best messages (JSON)."""
    label = get_object_or_404(Label.objects.for_workspace(request.workspace), pk=pk)
    try:
        boost = float(request.POST.get("boost", ""))
    except ValueError:
        boost = math.nan
    if not -1.0 <= boost <= 1.0:
        return JsonResponse({"error": "Boost must be a number from -1 to 1."}, status=400)
    answer = effect_preview(
        workspace=request.workspace,
        kind="boost",
        label=label,
        boost=boost,
        by=request.user.get_username(),
    )
    return JsonResponse(answer)


@editor_required
@require_POST
def label_set_active(request, slug: str):
    label_set = get_object_or_404(LabelSet.objects.for_workspace(request.workspace), slug=slug)
    active = request.POST.get("active") == "true"
    label_set_archive(
        workspace=request.workspace,
        actor=Actor.of_user(request.user),
        label_set=label_set,
        active=active,
    )
    messages.success(request, f"{'Restored' if active else 'Retired'} the label set {label_set}.")
    return redirect("catalogue-labels")


@editor_required
@require_POST
def label_active(request, pk: int):
    label = get_object_or_404(
        Label.objects.for_workspace(request.workspace).select_related("label_set"), pk=pk
    )
    active = request.POST.get("active") == "true"
    label_archive(
        workspace=request.workspace, actor=Actor.of_user(request.user), label=label, active=active
    )
    messages.success(request, f"{'Restored' if active else 'Retired'} the label {label}.")
    return redirect("catalogue-labels")
