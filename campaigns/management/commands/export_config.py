"""Write a workspace's taxonomy, messages, prompt templates and campaigns as JSON."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Workspace
from campaigns.transfer import config_export


class Command(BaseCommand):
    help = (
        "Export label sets, labels (phrases, boosts, descriptions), messages with labels, "
        "prompt templates' current text and campaigns as JSON, for import_config."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("--out", default="-", help="File to write (default: stdout).")

    def handle(self, *args, workspace, out, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace with slug {workspace!r}.")
        data = config_export(workspace=found)
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        if out == "-":
            self.stdout.write(text, ending="")
            return
        Path(out).write_text(text, encoding="utf-8")
        self.stderr.write(
            f"Wrote {out}: {sum(len(s['labels']) for s in data['label_sets'])} labels in "
            f"{len(data['label_sets'])} sets, {len(data['messages'])} messages, "
            f"{len(data['prompt_templates'])} templates, {len(data['campaigns'])} campaigns."
        )
