"""Reads of event imports for the import page and the API."""

from django.db.models import QuerySet

from campaigns.models import Workspace
from memory.importers.summary import SUMMARY_LABELS
from memory.models import EventImport


def imports_of_workspace(*, workspace: Workspace) -> QuerySet[EventImport]:
    """Return the workspace's imports, newest first, with who started them."""
    return (
        EventImport.objects.for_workspace(workspace)
        .select_related("created_by", "api_key")
        .order_by("-created_at", "-id")
    )


def import_of_workspace(*, workspace: Workspace, import_id: int) -> EventImport | None:
    """Return one import of the workspace, or None (another workspace's is not found either)."""
    return imports_of_workspace(workspace=workspace).filter(pk=import_id).first()


def import_summary_rows(*, job: EventImport) -> list[tuple[str, int]]:
    """Return the finished import's summary as (label, value), worded as import_events says it."""
    return [
        (label, job.summary[name]) for name, label in SUMMARY_LABELS.items() if name in job.summary
    ]


def import_status(*, job: EventImport) -> dict:
    """Return the little the import page polls for: status and progress."""
    return {
        "id": job.pk,
        "status": job.status,
        "lines_done": job.lines_done,
        "lines_total": job.lines_total,
        "progress": round(job.progress, 4),
        "stored": job.stored,
        "rejected": job.rejected,
        "error": job.error,
    }
