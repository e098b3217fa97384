"""Shared by the import tests: uploads in memory, a private MEDIA_ROOT, tasks run in-process."""

import gzip
import lzma
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from memory.models import EventImport
from tests.memory.test_import_files import SEGMENT_LINES

STARBUCKS = Path(settings.BASE_DIR) / "data" / "starbucks"

# The command's test file: four events, an identify, a blank line, bad lines 4 and 5.
SEGMENT_STORED = 4

CSV_TEXT = (
    "user,action,at,order,amount\n"
    "c1,Viewed,2025-06-01T10:00:00Z,o-1,3\n"
    "c1,Bought,2025-06-01T11:00:00Z,o-2,12.5\n"
    "c2,Bought,not a time,o-3,4\n"
    "c2,Viewed,2025-06-02T09:00:00Z,o-4,1\n"
)
CSV_MAPPING = {
    "user_id": "user",
    "event": "action",
    "timestamp": "at",
    "message_id": "order",
    "numeric": "amount",
}


def segment_bytes(lines: list[str] = SEGMENT_LINES) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def compressed(name: str, content: bytes) -> SimpleUploadedFile:
    """Return the content compressed as the name's suffix says (.gz or .xz)."""
    packed = gzip.compress(content) if name.endswith(".gz") else lzma.compress(content)
    return upload(name, packed)


def starbucks_uploads(profiles: int = 40, records: int = 300) -> list[SimpleUploadedFile]:
    """Return the three Starbucks files, cut to their first lines (the transcript plain)."""
    profile = (STARBUCKS / "profile.json").read_bytes().splitlines()[:profiles]
    with lzma.open(STARBUCKS / "transcript.json.xz") as handle:
        transcript = [handle.readline() for _ in range(records)]
    return [
        upload("portfolio.json", (STARBUCKS / "portfolio.json").read_bytes()),
        upload("profile.json", b"\n".join(profile) + b"\n"),
        upload("transcript.json", b"".join(transcript)),
    ]


def stored_files(media_root: Path) -> list[Path]:
    return sorted(path for path in media_root.rglob("*") if path.is_file())


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eager_tasks(settings):
    """Run tasks in-process, as without Redis, even where the tests have Redis."""
    from config.celery import app

    # Read before the setting changes: Celery's first read of its conf takes Django's settings.
    before = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True  # and no debounced recompute after the import
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks, eager_tasks):
    """Run what a request queues on commit (the import task) before the request returns."""

    def run(send, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return send(*args, **kwargs)

    return run


def only_import(workspace) -> EventImport:
    return EventImport.objects.for_workspace(workspace).get()
