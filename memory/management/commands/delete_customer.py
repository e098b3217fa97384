from django.core.management.base import BaseCommand, CommandError

from campaigns.tenancy.changes import Actor
from memory.management.commands._common import workspace_or_error
from memory.models import Customer
from memory.privacy import customer_erase


class Command(BaseCommand):
    help = "Delete a customer with their events, memory and prompt records (audited)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("customer", help="The customer's id, as sent in userId.")
        parser.add_argument(
            "--suppress",
            action="store_true",
            help="Also refuse every later event for this id (an owner can lift it on the page).",
        )

    def handle(self, *args, workspace, customer, suppress, **options):
        found = workspace_or_error(workspace)
        try:
            erased = customer_erase(
                workspace=found,
                external_id=customer,
                actor=Actor.system("delete_customer"),
                suppress=suppress,
            )
        except Customer.DoesNotExist:
            raise CommandError(f"No customer {customer!r} in workspace {workspace}.") from None
        counts = ", ".join(f"{count} {table}" for table, count in erased.rows.items())
        refused = " Their later events will be refused." if suppress else ""
        self.stdout.write(self.style.SUCCESS(f"Deleted {customer!r}: {counts}.{refused}"))
