"""Preference exports as jobs: record one, run it with progress, zip the files for download.

The API creates the job and queues the task; the task calls `preference_export_run`, which
goes through the same `preferences_export` as `manage.py export_preferences`. The job row is
the export's own bookkeeping, not derived memory.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import OperationalError, transaction
from django.utils import timezone

from campaigns.models import Workspace
from campaigns.prompts.preferences import PreferenceOptions, preferences_export
from campaigns.tenancy.changes import Actor
from memory.models import PreferenceExport

logger = logging.getLogger(__name__)

# Progress is written at most this often (each write is one UPDATE).
PROGRESS_INTERVAL_S = 0.5


def preference_export_create(
    *, workspace: Workspace, actor: Actor, options: PreferenceOptions
) -> PreferenceExport:
    """Check the options and record a queued export (the caller queues it).

    Raises ValidationError naming each field out of range.
    """
    problems = options.problems()
    if problems:
        raise ValidationError(problems)
    return PreferenceExport.objects.create(
        workspace=workspace,
        format=options.format,
        options={
            "max_pairs": options.max_pairs,
            "min_evidence": options.min_evidence,
            "cutoff": options.cutoff.isoformat() if options.cutoff else None,
            "holdout_percent": options.holdout_percent,
            "meta": options.meta,
        },
        created_by=actor.user if getattr(actor.user, "pk", None) else None,
        api_key=actor.api_key,
        actor=actor.name[:300],
    )


def _options_of(job: PreferenceExport) -> PreferenceOptions:
    stored = job.options
    return PreferenceOptions(
        format=job.format,
        max_pairs=stored.get("max_pairs", 3),
        min_evidence=stored.get("min_evidence", 0),
        cutoff=datetime.fromisoformat(stored["cutoff"]) if stored.get("cutoff") else None,
        holdout_percent=stored.get("holdout_percent", 0),
        meta=bool(stored.get("meta")),
    )


def _claim(job_id: int) -> PreferenceExport | None:
    """Mark the job running; None when it is finished already."""
    with transaction.atomic():
        job = PreferenceExport.objects.all_workspaces().select_for_update().get(pk=job_id)
        if job.status in {PreferenceExport.Status.SUCCEEDED, PreferenceExport.Status.FAILED}:
            return None
        job.status = PreferenceExport.Status.RUNNING
        job.started_at = timezone.now()
        job.done = job.total = 0
        job.error = ""
        job.save(update_fields=["status", "started_at", "done", "total", "error"])
        return job


class _Progress:
    """Write the export's stage and counts into the job row, at most every interval."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.written_at = 0.0
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage == self.stage and now - self.written_at < PROGRESS_INTERVAL_S and done < total:
            return
        self.stage, self.written_at = stage, now
        PreferenceExport.objects.all_workspaces().filter(pk=self.job_id).update(
            stage=stage[:40], done=done, total=total
        )


def preference_export_run(*, job_id: int) -> PreferenceExport:
    """Run a queued export to its end: the files zipped into the job's file; idempotent."""
    job = _claim(job_id)
    if job is None:
        return PreferenceExport.objects.all_workspaces().get(pk=job_id)
    folder = Path(tempfile.mkdtemp(prefix="primer-preferences-"))
    try:
        result = preferences_export(
            workspace=job.workspace,
            options=_options_of(job),
            out=folder / f"preferences-{job.format}.jsonl",
            on_progress=_Progress(job.pk),
        )
        archive = folder / "archive.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as packed:
            for path in [*result.files.values(), result.card]:
                packed.write(path, arcname=path.name)
        with archive.open("rb") as handle:
            job.file.save(
                f"{job.workspace_id}-{job.pk}-preferences-{job.format}.zip",
                File(handle),
                save=False,
            )
        job.status = PreferenceExport.Status.SUCCEEDED
        job.counts = {**result.counts, "seconds": round(result.seconds, 1)}
    except OperationalError:
        raise  # a lost database connection: the task retries
    except Exception as unexpected:  # the job row is where its people look: say what happened
        logger.exception("Preference export %s failed", job.pk)
        job.status = PreferenceExport.Status.FAILED
        job.error = f"{type(unexpected).__name__}: {unexpected}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    job.finished_at = timezone.now()
    # The progress columns are the progress writer's: not overwritten with the claim's zeros.
    job.save(update_fields=["status", "counts", "error", "file", "finished_at"])
    job.refresh_from_db()
    return job
