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
    TooManyToErase,
    customer_data_export,
    customer_erase,
    customer_suppression_lift,
    customers_erase_and_suppress,
    customers_suppress,
)
from memory.selectors import suppression_lookup, suppressions_count
from memory.web.suppression_forms import SuppressionLookupForm, SuppressListForm


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


@workspace_required
@require_GET
def suppressions(request):
    """How many ids are suppressed; with ?id=, whether that one is (the list holds digests)."""
    lookup = SuppressionLookupForm(request.GET if "id" in request.GET else None)
    found = None
    if lookup.is_valid():
        found = suppression_lookup(
            workspace=request.workspace, external_id=lookup.cleaned_data["id"]
        )
    return _suppressions_page(request, lookup, SuppressListForm(), found)


def _suppressions_page(request, lookup, suppress_list, found=None):
    return render(
        request,
        "memory/suppressions.html",
        {
            "count": suppressions_count(workspace=request.workspace),
            "lookup": lookup,
            "suppress_list": suppress_list,
            "found": found,
        },
        status=400 if lookup.errors or suppress_list.errors else 200,
    )


def _suppressions_of(external_id: str):
    return redirect(f"{reverse('suppressions')}?{urlencode({'id': external_id})}")


@owner_required
@require_POST
def suppression_add(request):
    form = SuppressListForm(request.POST)
    if not form.is_valid():
        return _suppressions_page(request, SuppressionLookupForm(), form)
    ids, actor = form.cleaned_data["ids"], Actor.of_user(request.user)
    if form.cleaned_data["erase"]:
        try:
            done, erased = customers_erase_and_suppress(
                workspace=request.workspace, external_ids=ids, actor=actor
            )
        except TooManyToErase as too_many:
            form.add_error("ids", str(too_many))
            return _suppressions_page(request, SuppressionLookupForm(), form)
        if erased:
            rows = sum(sum(item.rows.values()) for item in erased)
            messages.success(
                request,
                f"Deleted {_ids([item.external_id for item in erased])} with {rows:,} rows; "
                "webhooks are told.",
            )
    else:
        done = customers_suppress(workspace=request.workspace, external_ids=ids, actor=actor)
    if done.added:
        messages.success(request, f"Events for {_ids(done.added)} will be refused.")
    if done.already:
        messages.info(request, f"Already suppressed: {_ids(done.already)}.")
    if done.stored:
        messages.error(
            request,
            f"Not suppressed, they have data here: {_ids(done.stored)}. Tick 'Also delete' to "
            "delete them with suppression, or delete each on their page.",
        )
    return _suppressions_of(ids[0]) if len(ids) == 1 else redirect("suppressions")


def _ids(ids: list[str], shown: int = 5) -> str:
    """Name a few ids and count the rest, for a message."""
    named = ", ".join(repr(x) for x in ids[:shown])
    return named if len(ids) <= shown else f"{named} and {len(ids) - shown:,} more"


@owner_required
@require_POST
def suppression_lift(request):
    form = SuppressionLookupForm(request.POST)
    if not form.is_valid():
        return _suppressions_page(request, form, SuppressListForm())
    external_id = form.cleaned_data["id"]
    if customer_suppression_lift(
        workspace=request.workspace, external_id=external_id, actor=Actor.of_user(request.user)
    ):
        messages.success(request, f"Events for {external_id!r} are accepted again.")
    else:
        messages.info(request, f"{external_id!r} was not suppressed.")
    return _suppressions_of(external_id)
