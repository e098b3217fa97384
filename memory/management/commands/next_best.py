from django.core.management.base import BaseCommand, CommandError

from memory.management.commands._common import parse_as_of, workspace_or_error
from memory.models import Customer
from memory.predict import NoMemoryYet, memory_next_best, ranking_reasons


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
        self.stdout.write(
            f"{'rank':>4}  {'p_goal':>7}  {'pull':>6}  {'labels':>6}  {'wear':>6}  {'boost':>6}"
            "  message"
        )
        for row in ranking_reasons(ranked):
            self.stdout.write(
                f"{row['rank']:>4}  {row['p_goal']:7.3f}  x{row['pull']:<5.2f}  "
                f"x{row['labels']:<5.2f}  x{row['wear_out']:<5.2f}  {row['boost']:+6.2f}  "
                f"{row['key']}"
            )
        self.stdout.write(
            "pull, labels, wear: what sets the messages apart, as odds multipliers (the message's "
            "pull, their response to its labels, wear-out from similar messages lately)."
        )
