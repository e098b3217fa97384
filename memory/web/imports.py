"""The import page: upload an events file (or the Starbucks data), follow it, read its report.

Thin: the form parses, `event_import_create` checks and stores, the task runs the import (in
the request itself when there is no broker), selectors read. Viewers see the list only.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.tenancy.changes import Actor
from campaigns.tenancy.decorators import editor_required, viewers_cannot, workspace_required
from memory.import_selectors import (
    import_of_workspace,
    import_status,
    import_summary_rows,
    imports_of_workspace,
)
from memory.imports import event_import_create, event_import_retry
from memory.models import EventImport
from memory.tasks import event_import
from memory.web.import_forms import EventImportForm

RECENT = 50
ERRORS_LISTED = 3  # bad lines shown per import in the list; the import's page shows all kept


def _add_errors(form: EventImportForm, invalid: ValidationError) -> None:
    for field, errors in invalid.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@workspace_required
@require_http_methods(["GET", "POST"])
def imports(request):
    form = EventImportForm()
    if request.method == "POST":
        if not request.membership.can_edit:
            return viewers_cannot()
        form = EventImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                job = event_import_create(
                    workspace=request.workspace,
                    actor=Actor.of_user(request.user),
                    uploads=form.cleaned_data["files"],
                    format=form.cleaned_data["format"],
                    options=form.csv_options(),
                )
            except ValidationError as invalid:
                _add_errors(form, invalid)
            else:
                # Without a broker this runs here and now; with one, a worker picks it up.
                event_import.delay_on_commit(job.pk)
                return redirect("import-detail", import_id=job.pk)
    jobs = list(imports_of_workspace(workspace=request.workspace)[:RECENT])
    return render(
        request,
        "memory/imports.html",
        {
            "form": form,
            "jobs": jobs,
            "errors_listed": ERRORS_LISTED,
            "max_mb": settings.PRIMER_IMPORT_MAX_MB,
        },
        status=400 if form.errors else 200,
    )


def _job_or_404(request, import_id: int) -> EventImport:
    job = import_of_workspace(workspace=request.workspace, import_id=import_id)
    if job is None:
        raise Http404("No such import in this workspace.")
    return job


@workspace_required
@require_GET
def import_detail(request, import_id: int):
    job = _job_or_404(request, import_id)
    return render(
        request,
        "memory/import_detail.html",
        {
            "job": job,
            "summary_rows": import_summary_rows(job=job),
            "stalled_s": settings.PRIMER_IMPORT_STALLED_S,
        },
    )


@workspace_required
@require_GET
def import_status_json(request, import_id: int):
    return JsonResponse(import_status(job=_job_or_404(request, import_id)))


@editor_required
@require_POST
def import_run_again(request, import_id: int):
    _job_or_404(request, import_id)
    try:
        job = event_import_retry(workspace=request.workspace, job_id=import_id)
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        event_import.delay_on_commit(job.pk)
        messages.success(
            request, "Queued again: events already stored are recognised and not stored twice."
        )
    return redirect("import-detail", import_id=import_id)
