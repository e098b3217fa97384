"""Pages for messages: list and filter, create, edit, archive and restore, import from CSV, and
two small JSON endpoints for the form (nearest existing messages; labels the LLM suggests).

Thin: a form checks shapes, one service or selector runs, a page renders.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.catalogue.forms import MessageFilterForm, MessageForm, MessageImportForm
from campaigns.catalogue.imports import decode_upload, messages_import_csv
from campaigns.catalogue.messages import (
    label_ref,
    labels_resolve,
    message_archive,
    message_create,
    message_update,
)
from campaigns.catalogue.selectors import (
    NEAR_DUPLICATE_SIMILARITY,
    messages_filtered,
    messages_similar,
)
from campaigns.catalogue.suggest import labels_suggest
from campaigns.llm import LlmUnavailable, llm_configured
from campaigns.models import Message
from campaigns.tenancy.changes import Actor, StaleEdit
from campaigns.tenancy.decorators import editor_required, viewers_cannot, workspace_required
from config.rate_limit import llm_rate_refusal

PAGE_SIZE = 50
TEXT_LIMIT = 20_000


def _flag(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value)


@workspace_required
@require_GET
def message_list(request):
    workspace = request.workspace
    data = request.GET.copy()
    data.setdefault("active", "true")
    filters = MessageFilterForm(data, workspace=workspace)
    cleaned = filters.cleaned_data if filters.is_valid() else {"active": "true"}
    found = messages_filtered(
        workspace=workspace,
        label=cleaned.get("label") or "",
        active=_flag(cleaned.get("active") or ""),
        q=(cleaned.get("q") or "").strip(),
    )
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "campaigns/catalogue/messages.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "import_form": MessageImportForm(),
        },
    )


def _form_page(request, *, form, message=None, similar=None, status=200):
    return render(
        request,
        "campaigns/catalogue/message_form.html",
        {
            "form": form,
            "message": message,
            "similar": similar,
            "near_duplicate": NEAR_DUPLICATE_SIMILARITY,
            "llm_configured": llm_configured(),
        },
        status=status,
    )


def _text(form) -> str:
    return "\n".join(p for p in (form.cleaned_data["subject"], form.cleaned_data["body"]) if p)


def _saved(request, message: Message, created: bool):
    """Say it was saved, and warn if it reads like an existing message (on its edit page)."""
    similar = messages_similar(
        workspace=request.workspace, text=message.text, exclude_id=message.pk, limit=1
    )
    verb = "Created" if created else "Saved"
    if similar and similar[0].near_duplicate:
        closest = similar[0]
        messages.warning(
            request,
            f"{verb} {message.key}, but it reads like {closest.message.key} (similarity "
            f"{closest.similarity:.2f}): customers who got that one will find this one worn.",
        )
    else:
        messages.success(request, f"{verb} {message.key}.")
    return redirect("catalogue-message", pk=message.pk)


@editor_required
@require_http_methods(["GET", "POST"])
def message_new(request):
    workspace = request.workspace
    form = MessageForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            labels = labels_resolve(workspace=workspace, refs=data["labels"])
            created = message_create(
                workspace=workspace,
                actor=Actor.of_user(request.user),
                key=data["key"],
                subject=data["subject"],
                body=data["body"],
                labels=labels,
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            return _saved(request, created, created=True)
    return _form_page(request, form=form, status=400 if form.errors else 200)


@workspace_required
@require_http_methods(["GET", "POST"])
def message_edit(request, pk: int):
    workspace = request.workspace
    message = get_object_or_404(
        Message.objects.for_workspace(workspace).prefetch_related("labels__label_set"), pk=pk
    )
    carried = list(message.labels.all())
    if request.method == "POST":
        if not request.membership.can_edit:
            return viewers_cannot()
        form = MessageForm(request.POST, workspace=workspace, carried=carried)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = message_update(
                    workspace=workspace,
                    actor=Actor.of_user(request.user),
                    message=message,
                    changes={"key": data["key"], "subject": data["subject"], "body": data["body"]},
                    labels=labels_resolve(workspace=workspace, refs=data["labels"]),
                    expected_version=data["version"] or message.version,
                )
            except StaleEdit as error:
                form.add_error(None, str(error))
            except ValidationError as error:
                form.add_service_error(error)
            else:
                return _saved(request, saved, created=False)
    else:
        form = MessageForm(
            workspace=workspace,
            carried=carried,
            initial={
                "key": message.key,
                "subject": message.subject,
                "body": message.body,
                "labels": [label_ref(label) for label in carried],
                "version": message.version,
            },
        )
    similar = messages_similar(workspace=workspace, text=message.text, exclude_id=message.pk)
    return _form_page(
        request,
        form=form,
        message=message,
        similar=similar,
        status=400 if form.errors else 200,
    )


@editor_required
@require_POST
def message_active(request, pk: int):
    message = get_object_or_404(Message.objects.for_workspace(request.workspace), pk=pk)
    active = request.POST.get("active") == "true"
    message_archive(
        workspace=request.workspace,
        actor=Actor.of_user(request.user),
        message=message,
        active=active,
    )
    messages.success(request, f"{'Restored' if active else 'Archived'} {message.key}.")
    return redirect("catalogue-message", pk=message.pk)


@editor_required
@require_POST
def message_import(request):
    form = MessageImportForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        try:
            text = decode_upload(form.cleaned_data["file"].read())
        except ValidationError as error:
            form.add_error("file", error.message_dict["file"])
        else:
            report = messages_import_csv(
                workspace=request.workspace, actor=Actor.of_user(request.user), text=text
            )
    return render(
        request,
        "campaigns/catalogue/import_report.html",
        {"form": form, "report": report},
        status=400 if form.errors else 200,
    )


@workspace_required
@require_GET
def message_similar(request):
    """Return the nearest active messages to a text (the form asks while the marketer types)."""
    text = request.GET.get("text", "")[:TEXT_LIMIT]
    exclude = request.GET.get("exclude", "")
    similar = messages_similar(
        workspace=request.workspace,
        text=text,
        exclude_id=int(exclude) if exclude.isdigit() else None,
    )
    return JsonResponse(
        {
            "threshold": NEAR_DUPLICATE_SIMILARITY,
            "similar": [
                {
                    "id": found.message.pk,
                    "key": found.message.key,
                    "subject": found.message.subject,
                    "similarity": found.similarity,
                    "near_duplicate": found.near_duplicate,
                }
                for found in similar
            ],
        }
    )


@workspace_required
@require_POST
def message_suggest_labels(request):
    """Return the labels the LLM proposes for a text; nothing is applied here."""
    if not request.membership.can_edit:
        return viewers_cannot()
    text = request.POST.get("text", "")[:TEXT_LIMIT]
    refusal = llm_rate_refusal(request)
    if refusal:
        response = JsonResponse({"detail": refusal.message, "reason": "rate_limited"}, status=429)
        response["Retry-After"] = str(refusal.retry_after_s)
        return response
    try:
        labels = labels_suggest(workspace=request.workspace, text=text)
    except LlmUnavailable as error:
        return JsonResponse({"detail": error.message, "reason": error.reason}, status=503)
    return JsonResponse({"labels": [{"ref": label_ref(x), "name": x.phrase} for x in labels]})
