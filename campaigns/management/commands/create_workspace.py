from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Workspace
from campaigns.tenancy.services import workspace_create


class Command(BaseCommand):
    help = "Create a workspace (with the default label sets), optionally owned by a user."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--owner", help="User name to make owner (must exist).")

    def handle(self, *args, slug, name, owner, **options):
        if Workspace.objects.filter(slug=slug).exists():
            raise CommandError(f"A workspace with slug {slug!r} already exists.")
        owner_user = None
        if owner:
            owner_user = get_user_model().objects.filter(username=owner).first()
            if owner_user is None:
                raise CommandError(f"No user named {owner!r}.")
        try:
            workspace = workspace_create(slug=slug, name=name, owner=owner_user)
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
            ) from None
        self.stdout.write(
            self.style.SUCCESS(f"Created workspace {workspace.slug!r} (id {workspace.pk}).")
        )
