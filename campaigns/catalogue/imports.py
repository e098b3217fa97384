"""Bulk import of messages from CSV, with a per-line report: one bad line costs only itself.

Columns: key, subject, body, labels (`set:label;set:label`, from the workspace's taxonomy). A
key already in the workspace updates that message (its text and labels become the line's); a
line equal to what is stored changes nothing. Each line is saved through the same service as
the form and the API, in its own transaction, so each is validated and audited alike.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from campaigns.catalogue.messages import label_ref, labels_resolve, message_create, message_update
from campaigns.models import Message, Workspace
from campaigns.tenancy.changes import Actor

COLUMNS = ("key", "subject", "body", "labels")
REQUIRED_COLUMNS = {"key"}
MAX_LINES = 20_000


@dataclass(frozen=True)
class ImportProblem:
    line: int
    field: str
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def failed_lines(self) -> int:
        return len({problem.line for problem in self.problems})

    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.failed_lines} line(s) refused"
        )


def decode_upload(raw: bytes) -> str:
    """Return an uploaded file's text (UTF-8, with or without a byte-order mark)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError(
            {"file": f"The file is not UTF-8 text (byte {error.start} cannot be read)."}
        ) from None


def _problems(line: int, error: ValidationError) -> list[ImportProblem]:
    if not hasattr(error, "error_dict"):
        return [ImportProblem(line, "", message) for message in error.messages]
    return [
        ImportProblem(line, "" if name == NON_FIELD_ERRORS else name, message)
        for name, messages in error.message_dict.items()
        for message in messages
    ]


def _rows(text: str, report: ImportReport) -> list[tuple[int, dict]]:
    """Return (line number, row) for each CSV record; a malformed file stops at its bad line."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = REQUIRED_COLUMNS - set(header)
    if missing or not header:
        report.problems.append(
            ImportProblem(
                1, "header", f"The first line must name the columns {', '.join(COLUMNS)}."
            )
        )
        return []
    reader.fieldnames = header
    rows = []
    start = reader.line_num + 1
    try:
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
            if len(rows) > MAX_LINES:
                report.problems.append(
                    ImportProblem(start, "", f"Import at most {MAX_LINES} lines at a time.")
                )
                return rows[:MAX_LINES]
    except csv.Error as error:
        report.problems.append(ImportProblem(start, "", f"Not valid CSV: {error}."))
    return rows


def messages_import_csv(
    *,
    workspace: Workspace,
    actor: Actor,
    text: str,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update a message per CSV line; return what happened and each line's problems."""
    report = ImportReport()
    rows = _rows(text, report)
    if on_total is not None:
        on_total(len(rows))
    keys = {(row.get("key") or "").strip() for _, row in rows}
    existing = {
        message.key: message
        for message in Message.objects.for_workspace(workspace)
        .filter(key__in=keys)
        .prefetch_related("labels__label_set")
    }
    seen: dict[str, int] = {}
    for line, row in rows:
        if progress is not None:
            progress(1)
        if None in row:
            report.problems.append(ImportProblem(line, "", "More values than columns."))
            continue
        key = (row.get("key") or "").strip()
        if key in seen:
            report.problems.append(
                ImportProblem(line, "key", f"{key!r} was already on line {seen[key]}.")
            )
            continue
        seen[key] = line
        subject, body = (row.get("subject") or "").strip(), (row.get("body") or "").strip()
        refs = (row.get("labels") or "").split(";")
        try:
            labels = labels_resolve(workspace=workspace, refs=refs)
            message = existing.get(key)
            if message is None:
                message_create(
                    workspace=workspace,
                    actor=actor,
                    key=key,
                    subject=subject,
                    body=body,
                    labels=labels,
                )
                report.created += 1
                continue
            stored = sorted(label_ref(label) for label in message.labels.all())
            if (message.subject, message.body, stored) == (
                subject,
                body,
                sorted(label_ref(label) for label in labels),
            ):
                report.unchanged += 1
                continue
            message_update(
                workspace=workspace,
                actor=actor,
                message=message,
                changes={"subject": subject, "body": body},
                labels=labels,
                expected_version=None,
            )
            report.updated += 1
        except ValidationError as error:
            report.problems.extend(_problems(line, error))
    return report
