"""The audit timeline: every configuration change, newest first, filtered by type and actor."""

from urllib.parse import urlencode

from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from campaigns.tenancy.audit_selectors import audit_filter_choices, audit_page
from campaigns.tenancy.decorators import workspace_required


@workspace_required
@require_GET
def audit_timeline(request):
    object_type = request.GET.get("type", "").strip()
    actor = request.GET.get("actor", "").strip()
    try:
        page = audit_page(
            workspace=request.workspace,
            object_type=object_type,
            actor=actor,
            after=request.GET.get("after", ""),
        )
    except ValueError as bad:
        return HttpResponseBadRequest(str(bad))
    object_types, actors = audit_filter_choices(workspace=request.workspace)
    filters = {"type": object_type, "actor": actor}
    return render(
        request,
        "campaigns/audit.html",
        {
            "rows": page.rows,
            "object_types": object_types,
            "actors": actors,
            "object_type": object_type,
            "actor": actor,
            "next_query": urlencode(filters | {"after": page.next_after})
            if page.next_after
            else "",
        },
    )
