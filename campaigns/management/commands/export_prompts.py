"""Write every customer's prompt to a file (JSON Lines or CSV), with a progress bar."""

import os
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from campaigns.models import Workspace
from campaigns.prompts.engine import TemplateProblem, compile_template
from campaigns.prompts.export import FORMATS, export_pieces
from campaigns.prompts.selectors import (
    CHUNK_SIZE,
    PromptChoiceError,
    customers_count,
    prompt_choice,
)


class Command(BaseCommand):
    help = "Export every customer's personalized prompt as JSON Lines or CSV."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("--out", required=True, help="The file to write ('-': stdout).")
        parser.add_argument("--template", help="A template's slug (default: the workspace's).")
        parser.add_argument("--campaign", help="A campaign's slug: its template and guidance.")
        parser.add_argument(
            "--template-version", type=int, help="A template version (default: the latest)."
        )
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help=f"Render chunks in this many processes (this machine has {os.cpu_count()}).",
        )

    def handle(self, *args, **options):
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace {options['workspace']!r}.")
        try:
            choice = prompt_choice(
                workspace=workspace,
                template=options["template"],
                campaign=options["campaign"],
                version=options["template_version"],
            )
            # With a campaign, each prompt states a served, logged decision.
            choice = replace(choice, serve="export")
            compile_template(choice.text)
        except (PromptChoiceError, TemplateProblem) as error:
            raise CommandError(str(error)) from None
        to_stdout = options["out"] == "-"
        progress = tqdm(
            total=customers_count(workspace=workspace),
            unit="prompt",
            disable=to_stdout,
            file=self.stderr._out,
        )
        pieces = export_pieces(
            workspace=workspace,
            choice=choice,
            fmt=options["format"],
            processes=max(options["processes"], 1),
            chunk_size=options["chunk_size"],
        )
        counted = 0
        out = self.stdout._out if to_stdout else open(options["out"], "w", encoding="utf-8")  # noqa: SIM115
        try:
            for prompts, piece in pieces:
                out.write(piece)
                counted += prompts
                progress.update(prompts)
        finally:
            progress.close()
            if not to_stdout:
                out.close()
        if not to_stdout:
            self.stdout.write(
                f"Wrote {counted} prompts ({choice.template_slug} v{choice.template_version}) "
                f"to {options['out']}."
            )
