"""The import page in a real browser: upload, the live progress bar, the report once done."""

import pytest

from campaigns.models import Membership
from tests.memory.import_support import segment_bytes

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_it_follows_an_upload_until_its_worker_has_imported_it(
    page, workspace, make_user, celery_workers, settings, tmp_path
):
    settings.MEDIA_ROOT = media_root = tmp_path / "media"
    make_user("importer", workspace=workspace, role=Membership.Role.EDITOR)
    page.goto("/login/")
    page.fill("#id_username", "importer")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.goto("/imports/")
    page.set_input_files(
        "#id_files",
        files=[
            {"name": "events.jsonl", "mimeType": "application/x-ndjson", "buffer": segment_bytes()}
        ],
    )
    page.click("#import-form button[type=submit]")

    # No worker yet: the page shows the queued import and its script polls the status.
    page.wait_for_selector("#import-progress .status-text:has-text('events stored')")
    assert "queued: 0 lines" in page.locator("#import-progress").inner_text()
    celery_workers.start(PRIMER_MEDIA_ROOT=str(media_root))

    # Once the worker is done the script reloads the page, which shows the report.
    page.wait_for_selector("#import-summary", timeout=60_000)
    assert page.locator(".status-word").inner_text() == "succeeded"
    assert "events stored" in page.locator("#import-summary").inner_text()
    assert "malformed JSON" in page.locator("#import-errors").inner_text()
