from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from campaigns.catalogue.imports import decode_upload, messages_import_csv
from campaigns.models import Workspace
from campaigns.tenancy.changes import Actor


class Command(BaseCommand):
    help = (
        "Import messages from a CSV file (columns key, subject, body, labels as "
        "set:label;set:label); print a report line per refused line and a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("file", type=Path, help="The CSV file.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, workspace, file, no_progress, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace with slug {workspace!r}.")
        try:
            text = decode_upload(file.read_bytes())
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from None
        except ValidationError as error:
            raise CommandError(f"{file}: {error.message_dict['file'][0]}") from None
        bar = tqdm(unit="line", disable=no_progress, file=self.stderr._out)
        report = messages_import_csv(
            workspace=found,
            actor=Actor.system("import_messages"),
            text=text,
            progress=bar.update,
            on_total=lambda total: setattr(bar, "total", total),
        )
        bar.close()
        for problem in report.problems:
            field = f" {problem.field}:" if problem.field else ""
            self.stdout.write(f"line {problem.line}:{field} {problem.reason}")
        self.stdout.write(f"{file.name}: {report.summary()}.")
        if report.problems and not (report.created or report.updated or report.unchanged):
            raise CommandError("No line could be imported.")
