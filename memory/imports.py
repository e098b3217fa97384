"""Imports of event files from the browser and the API: check and store the upload, run it.

The page and the API call `event_import_create`, then queue the task, which calls
`event_import_run`; the run goes through the same `events_import` / `starbucks_import` as
`manage.py import_events`, so the counts and the bad lines are the same. Events deduplicate by
messageId (or the numbered content), so a run started again after a lost worker adds only what
the first left out.
"""

import logging
import lzma
import time
import uuid
import zlib
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import OperationalError, transaction
from django.utils import timezone

from campaigns.models import Workspace
from campaigns.tenancy.changes import Actor
from memory.importers.lines import CsvMapping, count_lines, csv_lines, jsonl_lines
from memory.importers.sniff import (
    HEAD_BYTES,
    BadFile,
    events_file_sniff,
    starbucks_file_sniff,
    starbucks_roles,
)
from memory.importers.summary import ImportSummary
from memory.models import EventImport
from memory.services import events_import, starbucks_import

logger = logging.getLogger(__name__)

FORMATS = ["auto", *EventImport.Format.values]
# The CSV column mapping as the form and the API name it (CsvMapping's fields).
CSV_FIELDS = [
    "user_id",
    "anonymous_id",
    "event",
    "event_name",
    "timestamp",
    "message_id",
    "type",
    "properties",
    "numeric",
    "delimiter",
]
CSV_COLUMNS = CSV_FIELDS[:7]  # each names one column (or, event_name, the one event name)
# Progress is written at most this often (each write is one UPDATE).
PROGRESS_INTERVAL_S = 0.5
READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


def csv_mapping_of(options: dict) -> CsvMapping:
    """Build the CSV mapping from the stored options (comma-separated lists, "\\t" for tab)."""

    def columns(value) -> list[str]:
        items = value if isinstance(value, list) else str(value or "").split(",")
        return [item.strip() for item in items if item.strip()]

    delimiter = options.get("delimiter") or ","
    delimiter = "\t" if delimiter in {"\\t", "tab"} else delimiter
    if len(delimiter) != 1:
        raise BadFile("The delimiter is one character (or \\t for tab).", field="delimiter")
    return CsvMapping(
        **{name: (options.get(name) or "").strip() or None for name in CSV_COLUMNS},
        properties=columns(options.get("properties")) or None,
        numeric=columns(options.get("numeric")),
        delimiter=delimiter,
    )


def _head(upload: File) -> bytes:
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    return head


def _refuse_too_large(uploads: list[File]) -> None:
    limit = settings.PRIMER_IMPORT_MAX_MB * 1024 * 1024
    for upload in uploads:
        if upload.size > limit:
            raise BadFile(
                f"{upload.name} is {upload.size / 1024 / 1024:,.1f} MB; the limit is "
                f"{settings.PRIMER_IMPORT_MAX_MB} MB (PRIMER_IMPORT_MAX_MB)."
            )


def _stored_files(*, uploads: list[File], format: str, options: dict) -> tuple[str, dict]:
    """Return the format and {model field: (stored name, upload)}; raise BadFile if unfit."""
    if not uploads:
        raise BadFile("Choose a file to import.")
    _refuse_too_large(uploads)
    roles = starbucks_roles([upload.name for upload in uploads])
    if format == EventImport.Format.STARBUCKS or (format == "auto" and roles):
        if roles is None:
            raise BadFile(
                "The Starbucks data is three files: portfolio.json, profile.json and "
                "transcript.json (or transcript.json.xz, as shipped)."
            )
        by_name = {upload.name: upload for upload in uploads}
        files = {}
        for role, name in roles.items():
            upload = by_name[name]
            stored = starbucks_file_sniff(role=role, name=name, head=_head(upload))
            field = "events_file" if role == "transcript" else f"{role}_file"
            files[field] = (stored, upload)
        return EventImport.Format.STARBUCKS, files
    if len(uploads) > 1:
        raise BadFile("Upload one events file at a time (or the three Starbucks files).")
    (upload,) = uploads
    mapping = csv_mapping_of(options) if format in {"auto", "csv"} else CsvMapping()
    sniffed = events_file_sniff(name=upload.name, head=_head(upload), kind=format, mapping=mapping)
    return sniffed.kind, {"events_file": (sniffed.stored_name, upload)}


def event_import_create(
    *,
    workspace: Workspace,
    actor: Actor,
    uploads: list[File],
    format: str = "auto",
    options: dict | None = None,
) -> EventImport:
    """Check the uploaded files, store them and record a queued import (the caller queues it).

    Raises ValidationError naming the field ("files", "format", "csv", "delimiter") and the
    reason: an empty, too large, mislabelled, undecodable or mis-mapped file is refused here,
    before anything is stored.
    """
    if format not in FORMATS:
        raise ValidationError({"format": f"{format!r} is not one of {', '.join(FORMATS)}."})
    options = {
        name: value for name, value in (options or {}).items() if name in CSV_FIELDS and value
    }
    try:
        kind, files = _stored_files(uploads=uploads, format=format, options=options)
    except BadFile as bad:
        raise ValidationError({bad.field: str(bad)}) from None
    job = EventImport(
        workspace=workspace,
        format=kind,
        file_name=", ".join(sorted(upload.name for _, upload in files.values()))[:500],
        file_size=sum(upload.size for _, upload in files.values()),
        folder=uuid.uuid4().hex,
        options=options if kind == EventImport.Format.CSV else {},
        created_by=actor.user if getattr(actor.user, "pk", None) else None,
        api_key=actor.api_key,
        actor=actor.name[:300],
    )
    try:
        for field, (stored_name, upload) in files.items():
            getattr(job, field).save(stored_name, upload, save=False)
        job.save()
    except BaseException:
        _files_delete(job)
        raise
    return job


# An import's uploaded files, deleted once it has succeeded.
FILE_FIELDS = ("events_file", "portfolio_file", "profile_file")

# What a claim resets: a run again starts its counts from zero.
CLAIMED_FIELDS = [
    "status",
    "attempts",
    "started_at",
    "heartbeat_at",
    "error",
    "lines_done",
    "stored",
    "rejected",
]


def _claim(job_id: int) -> EventImport | None:
    """Mark the job running for this worker; None if it is done or another worker has it."""
    with transaction.atomic():
        job = EventImport.objects.all_workspaces().select_for_update().get(pk=job_id)
        if job.status in {EventImport.Status.SUCCEEDED, EventImport.Status.FAILED}:
            return None
        if job.status == EventImport.Status.RUNNING and not job.lost:
            return None
        now = timezone.now()
        job.status = EventImport.Status.RUNNING
        job.attempts += 1
        job.started_at = job.heartbeat_at = now
        job.error = ""
        job.lines_done = job.stored = job.rejected = 0
        job.save(update_fields=CLAIMED_FIELDS)
        return job


def event_import_progress(*, job_id: int, summary: ImportSummary) -> None:
    """Write how far an import has got (called from the import's chunks, throttled)."""
    EventImport.objects.all_workspaces().filter(pk=job_id).update(
        lines_done=summary.lines,
        stored=summary.stored,
        rejected=len(summary.rejected),
        heartbeat_at=timezone.now(),
    )


class _Progress:
    """Feed the import's chunk callback into the job row, at most every PROGRESS_INTERVAL_S."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.written_at = 0.0

    def total(self, lines: int) -> None:
        EventImport.objects.all_workspaces().filter(pk=self.job_id).update(
            lines_total=lines, heartbeat_at=timezone.now()
        )

    def chunk(self, summary: ImportSummary, size: int) -> None:
        now = time.monotonic()
        if now - self.written_at >= PROGRESS_INTERVAL_S:
            self.written_at = now
            event_import_progress(job_id=self.job_id, summary=summary)


def _import(job: EventImport, summary: ImportSummary, progress: _Progress) -> None:
    workspace = job.workspace
    path = Path(job.events_file.path)
    if job.format == EventImport.Format.STARBUCKS:
        directory = path.parent
        progress.total(count_lines(directory / "profile.json") + count_lines(path))
        starbucks_import(
            workspace=workspace, directory=directory, summary=summary, on_chunk=progress.chunk
        )
        return
    progress.total(count_lines(path))
    lines = (
        csv_lines(path, csv_mapping_of(job.options))
        if job.format == EventImport.Format.CSV
        else jsonl_lines(path)
    )
    events_import(
        workspace=workspace,
        lines=lines,
        source=job.file_name,
        summary=summary,
        on_chunk=progress.chunk,
        chunk_size=settings.PRIMER_IMPORT_CHUNK_SIZE,
    )


def event_import_run(*, job_id: int) -> EventImport:
    """Run a queued (or lost) import to its end and record its report; idempotent.

    A finished import, or one another worker is running, is left alone. A file that breaks
    off mid-way fails the job with what was stored; other errors fail it with their message
    (a lost database connection is raised, for the task to retry).
    """
    job = _claim(job_id)
    if job is None:
        return EventImport.objects.all_workspaces().get(pk=job_id)
    started = time.perf_counter()
    summary = ImportSummary()
    error = ""
    try:
        _import(job, summary, _Progress(job.pk))
    except OperationalError:
        raise
    except READ_ERRORS as read_error:
        error = summary.unreadable(job.file_name, read_error)
    except ValueError as bad:  # e.g. a CSV mapping that does not fit the header
        error = f"{job.file_name}: {bad}"
    except Exception as unexpected:  # the job row is where its people look: say what happened
        logger.exception("Import %s failed", job.pk)
        error = f"{type(unexpected).__name__}: {unexpected}"
    return _finish(job, summary, error=error, seconds=time.perf_counter() - started)


def _finish(job: EventImport, summary: ImportSummary, *, error: str, seconds: float):
    job.status = EventImport.Status.FAILED if error else EventImport.Status.SUCCEEDED
    job.error = error
    job.lines_done = summary.lines
    if not error:
        job.lines_total = summary.lines
    job.stored = summary.stored
    job.rejected = len(summary.rejected)
    job.summary = {**summary.counts(), "seconds": round(seconds, 1)}
    job.errors = [
        {"source": source, "line": line, "field": field, "reason": reason}
        for source, line, field, reason in summary.rejected[: settings.PRIMER_IMPORT_ERRORS_KEPT]
    ]
    job.finished_at = job.heartbeat_at = timezone.now()
    # Imported: the upload is no longer needed (a failed one stays, to run it again). The row
    # says so in the same write as its status, so no reader sees it done with its files kept.
    done_with: list[tuple] = []
    if not error:
        uploads = (getattr(job, field) for field in FILE_FIELDS)
        done_with = [(upload.storage, upload.name) for upload in uploads if upload]
        for field in FILE_FIELDS:
            setattr(job, field, "")
    job.save()
    for storage, name in done_with:
        storage.delete(name)
    return job


def _files_delete(job: EventImport) -> None:
    for field in FILE_FIELDS:
        stored = getattr(job, field)
        if stored:
            stored.delete(save=False)
    if job.pk:
        EventImport.objects.all_workspaces().filter(pk=job.pk).update(
            **dict.fromkeys(FILE_FIELDS, "")
        )


def event_import_retry(*, workspace: Workspace, job_id: int) -> EventImport:
    """Queue a failed or lost import again (the caller queues it); safe, as events dedup.

    Raises EventImport.DoesNotExist for another workspace's job, ValidationError when the job
    is running fine, succeeded, or its files are gone.
    """
    with transaction.atomic():
        job = EventImport.objects.for_workspace(workspace).select_for_update().get(pk=job_id)
        if not job.can_run_again:
            raise ValidationError(
                f"Import {job.pk} is {job.status}; only a failed import, or one without "
                f"progress for {settings.PRIMER_IMPORT_STALLED_S} s (its worker was lost), "
                "runs again."
            )
        job.status = EventImport.Status.QUEUED
        job.error = ""
        job.finished_at = None
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at", "heartbeat_at"])
    return job
