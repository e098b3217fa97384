import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from campaigns.tenancy.changes import Actor
from memory.management.commands._common import workspace_or_error
from memory.models import Customer
from memory.privacy import customer_data_export


class Command(BaseCommand):
    help = "Write everything stored about one customer as JSON (audited)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("customer", help="The customer's id, as sent in userId.")
        parser.add_argument("--out", help="Write to this file instead of standard output.")

    def handle(self, *args, workspace, customer, out, **options):
        found = workspace_or_error(workspace)
        try:
            data = customer_data_export(
                workspace=found, external_id=customer, actor=Actor.system("export_customer")
            )
        except Customer.DoesNotExist:
            raise CommandError(f"No customer {customer!r} in workspace {workspace}.") from None
        text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=1)
        if out:
            with open(out, "w", encoding="utf-8") as file:
                file.write(text + "\n")
            rows = sum(len(rows) for rows in data["tables"].values())
            self.stderr.write(f"Wrote {customer!r} ({rows} rows) to {out}.")
        else:
            self.stdout.write(text)
