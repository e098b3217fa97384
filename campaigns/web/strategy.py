"""Pages for guardrails and overrides: lists, forms, archive and restore.

Thin: a form checks shapes, one service changes, a page renders. Members read; editors and
owners change (viewers see no controls, and their requests to change get a 403).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.models import Guardrail
from campaigns.prompts.preview import effect_preview
from campaigns.strategy.forms import GuardrailForm, OverrideForm
from campaigns.strategy.selectors import boosted_labels, guardrails_filtered, overrides_filtered
from campaigns.strategy.services import (
    guardrail_archive,
    guardrail_create,
    guardrail_proposed,
    guardrail_update,
    override_archive,
    override_create,
    override_proposed,
    override_update,
)
from campaigns.tenancy.changes import Actor, StaleEdit
from campaigns.tenancy.decorators import editor_required, workspace_required
from campaigns.web.support import active_toggle, form_refused
from memory.audiences import trait_filter_parse


def _one(rows, pk: int):
    found = rows.filter(pk=pk).first()
    if found is None:
        raise Http404("No such object in this workspace.")
    return found


def _segment_text(data) -> str:
    try:
        return trait_filter_parse(data).describe()
    except ValidationError:
        return "a filter that no longer reads"


@workspace_required
@require_GET
def guardrail_list(request):
    rows = guardrails_filtered(workspace=request.workspace)
    return render(
        request,
        "campaigns/strategy/guardrails.html",
        {
            "guardrails": [
                (g, _segment_text(g.audience) if g.kind == Guardrail.Kind.ELIGIBILITY else "")
                for g in rows
            ],
            "time_zone": request.workspace.time_zone,
        },
    )


def _guardrail_form_page(request, form, guardrail):
    return render(
        request,
        "campaigns/strategy/guardrail_form.html",
        {"form": form, "guardrail": guardrail, "time_zone": request.workspace.time_zone},
        status=400 if form.is_bound and form.errors else 200,
    )


@editor_required
@require_http_methods(["GET", "POST"])
def guardrail_new(request):
    form = GuardrailForm(request.POST or None, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        try:
            created = guardrail_create(
                workspace=request.workspace, actor=Actor.of_user(request.user), **form.changes()
            )
        except ValidationError as refused:
            form_refused(form, refused)
        else:
            messages.success(request, f"Created the guardrail {created.name}.")
            return redirect("guardrails")
    return _guardrail_form_page(request, form, None)


@editor_required
@require_http_methods(["GET", "POST"])
def guardrail_edit(request, pk: int):
    guardrail = _one(guardrails_filtered(workspace=request.workspace), pk)
    if request.method == "POST":
        form = GuardrailForm(request.POST, workspace=request.workspace)
        if form.is_valid():
            try:
                guardrail_update(
                    workspace=request.workspace,
                    actor=Actor.of_user(request.user),
                    guardrail=guardrail,
                    changes=form.changes(),
                    expected_version=form.cleaned_data["version"],
                )
            except (ValidationError, StaleEdit) as refused:
                form_refused(form, refused)
            else:
                messages.success(request, f"Saved the guardrail {guardrail.name}.")
                return redirect("guardrails")
    else:
        initial = {name: getattr(guardrail, name) for name in GuardrailForm.base_fields}
        form = GuardrailForm(initial=initial, workspace=request.workspace)
    return _guardrail_form_page(request, form, guardrail)


@editor_required
@require_POST
def guardrail_active(request, pk: int):
    guardrail = _one(guardrails_filtered(workspace=request.workspace), pk)
    active_toggle(request, archive=guardrail_archive, noun=guardrail.name, guardrail=guardrail)
    return redirect("guardrails")


@workspace_required
@require_GET
def override_list(request):
    rows = overrides_filtered(
        workspace=request.workspace, customer=request.GET.get("customer", "").strip()
    )
    return render(
        request,
        "campaigns/strategy/overrides.html",
        {
            "overrides": [
                (o, "" if o.customer_external_id else _segment_text(o.segment)) for o in rows
            ],
            "boosts": boosted_labels(workspace=request.workspace),
            "customer": request.GET.get("customer", "").strip(),
        },
    )


def _override_form_page(request, form, override):
    return render(
        request,
        "campaigns/strategy/override_form.html",
        {"form": form, "override": override},
        status=400 if form.is_bound and form.errors else 200,
    )


@editor_required
@require_http_methods(["GET", "POST"])
def override_new(request):
    initial = {"customer_external_id": request.GET.get("customer", "")}
    form = OverrideForm(request.POST or None, initial=initial, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        try:
            override_create(
                workspace=request.workspace, actor=Actor.of_user(request.user), **form.changes()
            )
        except ValidationError as refused:
            form_refused(form, refused)
        else:
            messages.success(request, "Saved the override.")
            return redirect("overrides")
    return _override_form_page(request, form, None)


@editor_required
@require_http_methods(["GET", "POST"])
def override_edit(request, pk: int):
    override = _one(overrides_filtered(workspace=request.workspace), pk)
    if request.method == "POST":
        form = OverrideForm(request.POST, workspace=request.workspace)
        if form.is_valid():
            try:
                override_update(
                    workspace=request.workspace,
                    actor=Actor.of_user(request.user),
                    override=override,
                    changes=form.changes(),
                    expected_version=form.cleaned_data["version"],
                )
            except (ValidationError, StaleEdit) as refused:
                form_refused(form, refused)
            else:
                messages.success(request, "Saved the override.")
                return redirect("overrides")
    else:
        initial = {name: getattr(override, name) for name in OverrideForm.base_fields}
        form = OverrideForm(initial=initial, workspace=request.workspace)
    return _override_form_page(request, form, override)


@editor_required
@require_POST
def override_active(request, pk: int):
    override = _one(overrides_filtered(workspace=request.workspace), pk)
    active_toggle(request, archive=override_archive, noun="the override", override=override)
    return redirect("overrides")


def _refused(errors: dict) -> JsonResponse:
    """Answer a preview whose form does not check: each field's reasons, and one line."""
    line = "; ".join(f"{field}: {' '.join(reasons)}" for field, reasons in errors.items())
    return JsonResponse({"error": f"Fix the form first ({line}).", "errors": errors}, status=400)


def _preview(request, *, kind: str, form, proposed, existing) -> JsonResponse:
    """Check the form as saving would, then preview the proposal's effect (nothing saved)."""
    if not form.is_valid():
        return _refused({field: list(errors) for field, errors in form.errors.items()})
    try:
        proposal = proposed(
            workspace=request.workspace,
            actor=Actor.of_user(request.user),
            changes=form.changes(),
            **{kind: existing},
        )
    except ValidationError as refused:
        return _refused(dict(refused.message_dict))
    change = {"id": existing.pk if existing else None}
    answer = effect_preview(
        workspace=request.workspace, kind=kind, change=change, **{kind: proposal}
    )
    return JsonResponse(answer)


@workspace_required
@require_POST
def guardrail_preview_effect(request, pk: int | None = None):
    """Preview what the guardrail in the form would do to next best messages (JSON)."""
    existing = _one(guardrails_filtered(workspace=request.workspace), pk) if pk else None
    form = GuardrailForm(request.POST, workspace=request.workspace)
    return _preview(
        request, kind="guardrail", form=form, proposed=guardrail_proposed, existing=existing
    )


@workspace_required
@require_POST
def override_preview_effect(request, pk: int | None = None):
    """Preview what the override in the form would do to next best messages and prompts."""
    existing = _one(overrides_filtered(workspace=request.workspace), pk) if pk else None
    form = OverrideForm(request.POST, workspace=request.workspace)
    return _preview(
        request, kind="override", form=form, proposed=override_proposed, existing=existing
    )
