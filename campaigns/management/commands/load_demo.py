from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from campaigns.models import Membership, Workspace
from campaigns.services import (
    label_describe,
    membership_grant,
    messages_upsert,
    user_ensure,
    workspace_create,
)
from memory.importers.starbucks import OFFER_TYPE_LABELS, read_portfolio

DEMO_DIR = Path(settings.BASE_DIR) / "data" / "starbucks"


class Command(BaseCommand):
    help = "Create the demo workspace and user, and load the Starbucks demo data (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="primer-demo")

    @transaction.atomic
    def handle(self, *args, workspace, username, password, **options):
        user = user_ensure(username=username, password=password)
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            found = workspace_create(slug=workspace, name="Starbucks rewards (demo)")
        membership_grant(workspace=found, user=user, role=Membership.Role.OWNER)

        self.stdout.write("Loading the Starbucks offers as messages…")
        messages = messages_upsert(
            workspace=found, specs=read_portfolio(DEMO_DIR / "portfolio.json")
        )
        for slug, name in OFFER_TYPE_LABELS.items():
            label_describe(
                workspace=found,
                label_set="value_proposition",
                slug=slug,
                name=name,
                prompt_phrase=name.lower(),
            )
        self.stdout.write(f"  {len(messages)} messages in workspace {found.slug!r}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready. Log in at http://127.0.0.1:8000/login/ as "
                f"user {username!r} with password {password!r}."
            )
        )
