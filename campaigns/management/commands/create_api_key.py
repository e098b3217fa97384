from django.core.management.base import BaseCommand, CommandError

from campaigns.models import ApiKey, Workspace
from campaigns.tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a workspace and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument(
            "--scopes",
            default="write,read",
            help=f"Comma-separated, among {', '.join(ApiKey.Scope.values)} (default: both).",
        )
        parser.add_argument("--name", default="", help="A note to recognise the key by.")

    def handle(self, *args, workspace, scopes, name, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace with slug {workspace!r}.")
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            api_key, raw_key = api_key_create(workspace=found, scopes=scope_list, name=name)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stderr.write(
            f"API key {api_key.prefix}… for {found.slug} ({', '.join(api_key.scopes)}). "
            "Copy it now: it is stored hashed and cannot be shown again."
        )
        self.stdout.write(raw_key)
