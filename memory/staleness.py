"""Whether the stored memory is stale: computed by settings that have changed since its run."""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.models import AuditEntry, Workspace
from campaigns.tenancy.services import MEMORY_FIELDS
from memory.models import RecomputeRun

# A run that started after a change was computed by the new settings (or will be).
CURRENT_RUNS = [
    RecomputeRun.Status.QUEUED,
    RecomputeRun.Status.RUNNING,
    RecomputeRun.Status.SUCCEEDED,
]


@dataclass(frozen=True)
class StaleSetting:
    """A setting the memory was computed by, changed since: from what, to what, by whom."""

    field: str
    before: object
    after: object
    actor: str


def memory_stale_settings(*, workspace: Workspace) -> list[StaleSetting]:
    """Return the memory's settings changed since the latest run started (none: memory is current).

    A workspace with no run at all has no stored memory to be stale.
    """
    last_run = (
        RecomputeRun.objects.for_workspace(workspace)
        .filter(status__in=CURRENT_RUNS)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if last_run is None:
        return []
    changes = (
        AuditEntry.objects.for_workspace(workspace)
        .filter(object_type="workspace", object_id=str(workspace.pk), at__gt=last_run)
        .order_by("at", "pk")
    )
    first_before: dict[str, object] = {}
    latest: dict[str, tuple[object, str]] = {}
    for entry in changes:
        for field, before, after in entry.changed_fields():
            if field in MEMORY_FIELDS:
                first_before.setdefault(field, before)
                latest[field] = (after, entry.actor)
    return [
        StaleSetting(field, first_before[field], after, actor)
        for field, (after, actor) in latest.items()
        # Changed and changed back: the memory is as current as before.
        if first_before[field] != after
    ]
