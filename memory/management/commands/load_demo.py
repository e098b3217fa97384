import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from campaigns.models import Membership, Workspace
from campaigns.tenancy.services import membership_grant, user_ensure, workspace_create
from memory.importers.starbucks import starbucks_catalogue_load
from memory.models import Event, RecomputeRun

DEMO_DIR = Path(settings.BASE_DIR) / "data" / "starbucks"


class Command(BaseCommand):
    help = (
        "Create the demo workspace and user, import the Starbucks rewards data through the "
        "ordinary import path, and recompute its memory (idempotent: a second run is quick)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="primer-demo")
        parser.add_argument(
            "--address", default="127.0.0.1:8000", help="Where the server will listen (shown)."
        )
        parser.add_argument(
            "--offers-only", action="store_true", help="Load the 10 offers, not the events."
        )

    def handle(self, *args, workspace, username, password, address, offers_only, **options):
        started = time.perf_counter()
        user = user_ensure(username=username, password=password)
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            found = workspace_create(slug=workspace, name="Starbucks rewards (demo)")
        membership_grant(workspace=found, user=user, role=Membership.Role.OWNER)
        quiet = {"verbosity": 0} if options["verbosity"] == 0 else {}

        if offers_only:
            starbucks_catalogue_load(workspace=found, portfolio=DEMO_DIR / "portfolio.json")
        elif not Event.objects.for_workspace(found).exists():
            self.stdout.write(
                "Importing the Starbucks rewards data (17,000 customers, 306,534 events)…"
            )
            call_command(
                "import_events", str(DEMO_DIR), workspace=found.slug, format="starbucks", **quiet
            )
        else:
            self.stdout.write("Starbucks events already imported.")
        starbucks_catalogue_load(workspace=found, portfolio=None)

        recomputed = RecomputeRun.objects.for_workspace(found).filter(
            status=RecomputeRun.Status.SUCCEEDED
        )
        if not offers_only and not recomputed.exists():
            self.stdout.write("Recomputing the memory (associations, habituation, priming)…")
            call_command("recompute", workspace=found.slug, **quiet)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready in {time.perf_counter() - started:.0f} s. Log in at "
                f"http://{address}/login/ as user {username!r} with password {password!r}."
            )
        )
