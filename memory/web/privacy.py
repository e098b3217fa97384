"""Pages: export one customer's data as JSON (editors, owners), erase it (owners)."""

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from campaigns.tenancy.changes import Actor
from campaigns.tenancy.decorators import editor_required, owner_required
from config.customer_urls import customer_url
from memory.models import Customer
from memory.privacy import customer_data_export, customer_erase


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
    try:
        erased = customer_erase(
            workspace=request.workspace, external_id=external_id, actor=Actor.of_user(request.user)
        )
    except Customer.DoesNotExist:
        raise Http404("No such customer in this workspace.") from None
    messages.success(
        request,
        f"Deleted customer {external_id!r} with {sum(erased.rows.values())} rows "
        "(events, memory, prompt records); webhooks are told.",
    )
    return redirect("customer-list")
