from django.core.management.base import BaseCommand, CommandError

from memory.management.commands._common import parse_as_of, workspace_or_error
from memory.models import Customer
from memory.predict import NoMemoryYet, memory_next_best


class Command(BaseCommand):
    help = "Rank the active messages for one customer (label boosts honoured), best first."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("--customer", required=True, help="The customer's external id.")
        parser.add_argument("--as-of", help="ISO time (default: the latest recompute, now).")
        parser.add_argument("--explore", action="store_true", help="Thompson-sample the labels.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--limit", type=int, default=10)

    def handle(self, *args, workspace, customer, as_of, explore, seed, limit, **options):
        found = workspace_or_error(workspace)
        try:
            ranked = memory_next_best(
                workspace=found,
                external_id=customer,
                explore=explore,
                seed=seed,
                as_of=parse_as_of(as_of),
                limit=limit,
            )
        except NoMemoryYet as error:
            raise CommandError(f"{error} Run `manage.py recompute` first.") from None
        except Customer.DoesNotExist as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{'rank':>4}  {'p_goal':>7}  {'boost':>6}  message")
        for row in ranked.iter_rows(named=True):
            self.stdout.write(
                f"{row['rank']:>4}  {row['p_goal']:7.3f}  {row['boost']:+6.2f}  {row['key']}"
            )
