"""Create or update a workspace's taxonomy from an export_config file: all or nothing."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Workspace
from campaigns.transfer import ConfigImportError, config_import


class Command(BaseCommand):
    help = (
        "Import an export_config JSON file into a workspace, matching by slug and key (running "
        "it twice changes nothing more); one transaction, audited as the system."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("file", help="The JSON file export_config wrote.")

    def handle(self, *args, workspace, file, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace with slug {workspace!r}.")
        try:
            data = json.loads(Path(file).read_text(encoding="utf-8"))
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}.") from None
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not UTF-8 text.") from None
        except json.JSONDecodeError as error:
            raise CommandError(
                f"{file}, line {error.lineno} column {error.colno}: not JSON ({error.msg}). "
                "Nothing was imported."
            ) from None
        try:
            summary = config_import(workspace=found, data=data)
        except ConfigImportError as error:
            raise CommandError(f"{file}: {error}. Nothing was imported.") from None
        self.stdout.write(f"Imported {file} into {found.slug}: {summary}.")
