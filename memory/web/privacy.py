"""Pages: export one customer's data as JSON (editors, owners), erase it (owners); the ids
whose events are refused (owners suppress and lift, every member sees the count)."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from campaigns.tenancy.changes import Actor
from campaigns.tenancy.decorators import editor_required, owner_required, workspace_required
from config.customer_urls import customer_url
from memory.models import Customer
from memory.privacy import (
    CustomerStored,
    customer_data_export,
    customer_erase,
    customer_suppress,
    customer_suppression_lift,
)
from memory.selectors import customer_suppression, suppressions_count


@editor_required
@require_GET
def customer_export(request, external_id: str):
    try:
        data = customer_data_export(
            workspace=request.workspace, external_id=external_id, actor=Actor.of_user(request.user)
        )
    except Customer.DoesNotExist:
        raise Http404("No such customer in this workspace.") from None
    response = JsonResponse(data, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 1})
    response["Content-Disposition"] = 'attachment; filename="customer.json"'
    response["Cache-Control"] = "no-store"
    return response


@owner_required
@require_POST
def customer_delete(request, external_id: str):
    if request.POST.get("confirm") != external_id:
        messages.error(request, "Type the customer's id to confirm the deletion.")
        return redirect(customer_url("customer-detail", external_id))
    suppress = request.POST.get("suppress") == "1"
    try:
        erased = customer_erase(
            workspace=request.workspace,
            external_id=external_id,
            actor=Actor.of_user(request.user),
            suppress=suppress,
        )
    except Customer.DoesNotExist:
        raise Http404("No such customer in this workspace.") from None
    refused = " Their later events will be refused." if suppress else ""
    messages.success(
        request,
        f"Deleted customer {external_id!r} with {sum(erased.rows.values())} rows "
        f"(events, memory, prompt records); webhooks are told.{refused}",
    )
    return redirect("customer-list")


_ID_MAX = Customer._meta.get_field("external_id").max_length


@workspace_required
@require_GET
def suppressions(request):
    """How many ids are suppressed; with ?id=, whether that one is (the list holds digests)."""
    checked = request.GET.get("id", "").strip()
    error = ""
    if len(checked) > _ID_MAX:
        error, checked = f"An id has at most {_ID_MAX} characters.", ""
    found = (
        customer_suppression(workspace=request.workspace, external_id=checked) if checked else None
    )
    stored = (
        bool(checked)
        and Customer.objects.for_workspace(request.workspace).filter(external_id=checked).exists()
    )
    return render(
        request,
        "memory/suppressions.html",
        {
            "count": suppressions_count(workspace=request.workspace),
            "checked": checked,
            "suppression": found,
            "stored": stored,
            "error": error,
        },
    )


def _checked_id(request) -> str | None:
    external_id = request.POST.get("id", "").strip()
    if not external_id or len(external_id) > _ID_MAX:
        messages.error(request, f"Give a customer id (1 to {_ID_MAX} characters).")
        return None
    return external_id


def _suppressions_of(external_id: str):
    return redirect(f"{reverse('suppressions')}?{urlencode({'id': external_id})}")


@owner_required
@require_POST
def suppression_add(request):
    external_id = _checked_id(request)
    if external_id is None:
        return redirect("suppressions")
    try:
        created = customer_suppress(
            workspace=request.workspace, external_id=external_id, actor=Actor.of_user(request.user)
        )
    except CustomerStored as stored:
        messages.error(request, str(stored))
        return _suppressions_of(external_id)
    if created:
        messages.success(request, f"Events for {external_id!r} will be refused.")
    else:
        messages.info(request, f"{external_id!r} was already suppressed.")
    return _suppressions_of(external_id)


@owner_required
@require_POST
def suppression_lift(request):
    external_id = _checked_id(request)
    if external_id is None:
        return redirect("suppressions")
    if customer_suppression_lift(
        workspace=request.workspace, external_id=external_id, actor=Actor.of_user(request.user)
    ):
        messages.success(request, f"Events for {external_id!r} are accepted again.")
    else:
        messages.info(request, f"{external_id!r} was not suppressed.")
    return _suppressions_of(external_id)
