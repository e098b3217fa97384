"""Customer ids whose events a workspace refuses, checked inside every write transaction.

An erased customer's events would otherwise create them again, rebuilding the profile the
person asked to delete. A suppressed id is kept as a digest, not as the id. The check and an
erasure exclude each other on PostgreSQL through an advisory lock per workspace: every write
takes it shared, a suppression exclusive, so a batch either finished before the suppression
(and its rows are erased with the customer) or starts after it and sees it. SQLite writers
already run one at a time (write_lock_take). docs/decisions/0604.
"""

from __future__ import annotations

import hashlib

from django.db import connection

from memory.ingest.segment import EventRow, Rejection
from memory.models import SuppressedCustomer

SUPPRESSED_FIELD = "userId"
SUPPRESSED_REASON = (
    "this customer was erased and their events are suppressed; an owner can lift the "
    "suppression (DELETE /api/v1/suppressions/{id})"
)
# pg_advisory_xact_lock's first key: the namespace of these locks (the second is the workspace).
_LOCK_NAMESPACE = 604


def id_digest(workspace_id: int, external_id: str) -> str:
    """Return the stored form of a suppressed id: SHA-256 of the workspace and the id."""
    return hashlib.sha256(f"{workspace_id}\x00{external_id}".encode()).hexdigest()


def suppression_lock_shared(workspace_id: int) -> None:
    """Hold, until the transaction ends, the right to write events for the workspace."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock_shared(%s, %s)", [_LOCK_NAMESPACE, workspace_id]
            )


def suppression_lock_exclusive(workspace_id: int) -> None:
    """Wait for the workspace's writes in flight, and hold new ones until the transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, workspace_id])


def suppressed_ids(*, workspace_id: int, external_ids: set[str]) -> set[str]:
    """Return those of the ids that the workspace suppresses (indexed queries)."""
    suppressions = SuppressedCustomer.objects.for_workspace(workspace_id)
    # Most workspaces suppress no one: one probe spares hashing every id of the batch.
    if not external_ids or not suppressions.exists():
        return set()
    by_digest = {id_digest(workspace_id, external_id): external_id for external_id in external_ids}
    found = suppressions.filter(digest__in=list(by_digest)).values_list("digest", flat=True)
    return {by_digest[digest] for digest in found}


def rows_not_suppressed(
    *, workspace_id: int, rows: list[EventRow]
) -> tuple[list[EventRow], list[Rejection]]:
    """Return the rows of ids not suppressed, and a rejection for each of the others.

    Call it inside the write transaction, after suppression_lock_shared.
    """
    suppressed = suppressed_ids(
        workspace_id=workspace_id, external_ids={row.external_id for row in rows}
    )
    if not suppressed:
        return rows, []
    kept, refused = [], []
    for row in rows:
        if row.external_id in suppressed:
            refused.append(Rejection(row.index, SUPPRESSED_FIELD, SUPPRESSED_REASON))
        else:
            kept.append(row)
    return kept, refused
