"""Reads of the audit trail: the timeline page, the API, and the changes between two times."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from campaigns.models import AuditEntry, Workspace

PAGE_SIZE = 50
SHOWN_CHARS = 80


@dataclass(frozen=True)
class FieldChange:
    """One field of one change, its values as shown ("—" for none)."""

    field: str
    before: str
    after: str


@dataclass(frozen=True)
class AuditRow:
    """An audit entry with its changed fields worded for people."""

    entry: AuditEntry
    changes: list[FieldChange]

    @property
    def summary(self) -> str:
        """Say what changed, e.g. "boost of discount 0 → 0.3"."""
        what = self.entry.object_repr
        if self.entry.action == AuditEntry.Action.CREATE:
            return f"{self.entry.object_type} {what} created"
        parts = [f"{c.field} of {what} {c.before} → {c.after}" for c in self.changes]
        return "; ".join(parts) or f"{self.entry.object_type} {what} {self.entry.action}d"


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    next_after: str  # the cursor of the next (older) page; "" on the last


def shown(value) -> str:
    """Word one audited value: numbers plainly, yes/no, "—" for nothing, long text cut."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(shown(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {shown(item)}" for key, item in value.items())
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def audit_row(entry: AuditEntry) -> AuditRow:
    """Return the entry with each changed field's before and after, as shown."""
    return AuditRow(
        entry=entry,
        changes=[
            FieldChange(field=name, before=shown(before), after=shown(after))
            for name, before, after in entry.changed_fields()
        ],
    )


def audit_entries(
    *,
    workspace: Workspace,
    object_type: str = "",
    actor: str = "",
    object_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Return the workspace's changes, newest first, narrowed by whichever filters are given.

    `since` is exclusive and `until` inclusive, so consecutive windows never count a change
    twice.
    """
    entries = AuditEntry.objects.for_workspace(workspace).order_by("-at", "-id")
    if object_type:
        entries = entries.filter(object_type=object_type)
    if actor:
        entries = entries.filter(actor=actor)
    if object_id:
        entries = entries.filter(object_id=object_id)
    if since is not None:
        entries = entries.filter(at__gt=since)
    if until is not None:
        entries = entries.filter(at__lte=until)
    return entries


def _cursor_of(entry: AuditEntry) -> str:
    return f"{entry.at.isoformat()}|{entry.pk}"


def _position(after: str) -> tuple[datetime, int]:
    """Parse a page cursor; raise ValueError for one this module did not write."""
    at, _, pk = after.partition("|")
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None or not pk.isdigit():
        raise ValueError(f"{after!r} is not a page of the audit timeline.")
    return moment, int(pk)


def audit_page(
    *,
    workspace: Workspace,
    object_type: str = "",
    actor: str = "",
    after: str = "",
    size: int = PAGE_SIZE,
) -> AuditPage:
    """Return one page of the timeline, newest first, from the cursor `after` (keyset).

    Raises ValueError for a malformed cursor.
    """
    entries = audit_entries(workspace=workspace, object_type=object_type, actor=actor)
    if after:
        at, pk = _position(after)
        entries = entries.filter(Q(at__lt=at) | Q(at=at, pk__lt=pk))
    found = list(entries.select_related("user", "api_key")[: size + 1])
    rows = [audit_row(entry) for entry in found[:size]]
    return AuditPage(rows=rows, next_after=_cursor_of(found[size - 1]) if len(found) > size else "")


def audit_filter_choices(*, workspace: Workspace) -> tuple[list[str], list[str]]:
    """Return the object types and the actors the workspace's timeline holds, sorted."""
    entries = AuditEntry.objects.for_workspace(workspace).order_by()
    object_types = entries.values_list("object_type", flat=True).distinct()
    actors = entries.values_list("actor", flat=True).distinct()
    return sorted(object_types), sorted(actors)


def audit_between(*, workspace: Workspace, start: datetime | None, end: datetime) -> list[AuditRow]:
    """Return the changes after `start` (None: from the beginning) up to `end`, oldest first.

    For the memory page: the changes between one recompute run and the next.
    """
    entries = audit_entries(workspace=workspace, since=start, until=end).order_by("at", "id")
    return [audit_row(entry) for entry in entries]
