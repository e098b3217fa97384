from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from memory.decisions import customers_decisions_serve, next_best_decide
from memory.management.commands._common import parse_as_of, workspace_or_error
from memory.models import Customer, Decision
from memory.next_best import next_best_for
from memory.predict import NoMemoryYet, memory_next_best, ranking_reasons

# Customers served per bulk write (one COPY each).
BURST = 100_000


class Command(BaseCommand):
    help = (
        "A customer's next best messages, best first: the list the last recompute stored (label "
        "boosts honoured), or with --as-of ranked by the engine as of that time."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("--customer", help="The customer's external id.")
        parser.add_argument(
            "--all",
            action="store_true",
            help="Serve every customer one message (logged in bulk) instead of ranking one.",
        )
        parser.add_argument(
            "--campaign", help="A campaign's slug: choose among its messages, by holdout arm."
        )
        parser.add_argument(
            "--no-decision",
            action="store_true",
            help="Rank only: serve and log no decision (by default one is, explored).",
        )
        parser.add_argument(
            "--as-of", help="ISO time: rank with the engine as of then (default: the stored list)."
        )
        parser.add_argument("--explore", action="store_true", help="Thompson-sample the labels.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--limit", type=int, default=10)

    def handle(self, *args, workspace, customer, as_of, explore, seed, limit, **options):
        found = workspace_or_error(workspace)
        if seed < 0:
            raise CommandError("--seed must be 0 or more.")
        campaign = None
        if options["campaign"]:
            campaign = (
                Campaign.objects.for_workspace(found).filter(slug=options["campaign"]).first()
            )
            if campaign is None:
                raise CommandError(f"No campaign {options['campaign']!r} in {workspace!r}.")
        if options["all"]:
            self._serve_all(found, campaign)
            return
        if not customer:
            raise CommandError("Name a --customer, or serve --all.")
        try:
            rows = (
                self._engine(found, customer, as_of, explore, seed, limit)
                if as_of
                else self._stored(found, customer, explore, seed, limit)
            )
        except Customer.DoesNotExist:
            raise CommandError(f"No customer {customer!r} in workspace {workspace!r}.") from None
        self.stdout.write(
            f"{'rank':>4}  {'p_goal':>7}  {'pull':>6}  {'labels':>6}  {'wear':>6}  {'boost':>6}"
            "  message"
        )
        for row in rows:
            self.stdout.write(
                f"{row['rank']:>4}  {row['p_goal']:7.3f}  x{row['pull']:<5.2f}  "
                f"x{row['labels']:<5.2f}  x{row['wear_out']:<5.2f}  {row['boost']:+6.2f}  "
                f"{row['key']}"
            )
        self.stdout.write(
            "pull, labels, wear: what sets the messages apart, as odds multipliers (the message's "
            "pull, their response to its labels, wear-out from similar messages lately)."
        )
        if not options["no_decision"] and not as_of:
            self._serve_one(found, customer, campaign)

    def _serve_one(self, workspace, customer, campaign) -> None:
        decided = next_best_decide(
            workspace=workspace,
            external_id=customer,
            source=Decision.Source.COMMAND,
            campaign=campaign,
        )
        item = decided.decision
        if item is None:
            self.stdout.write(f"No decision served: {decided.nothing_now}")
            return
        key = next(o.key for o in decided.offers if o.message_id == item.message_id)
        arm = f", arm {item.arm}" if item.arm else ""
        self.stdout.write(
            f"served: {key} (decision {item.public_id}, propensity {item.propensity:.3f}, "
            f"{item.policy}{arm}); send it with properties.decision_id={item.public_id}"
        )

    def _serve_all(self, workspace, campaign) -> None:
        ids = list(
            Customer.objects.for_workspace(workspace).order_by("pk").values_list("pk", flat=True)
        )
        served = 0
        for start in range(0, len(ids), BURST):
            served += len(
                customers_decisions_serve(
                    workspace=workspace,
                    customer_ids=ids[start : start + BURST],
                    source=Decision.Source.COMMAND,
                    campaign=campaign,
                )
            )
        self.stdout.write(f"{served} decisions served and logged for {len(ids)} customers.")

    def _stored(self, workspace, customer, explore, seed, limit) -> list[dict]:
        answer = next_best_for(
            workspace=workspace, external_id=customer, explore=explore, seed=seed, limit=limit
        )
        if answer.nothing_now and not answer.excluded:
            raise CommandError(f"{answer.nothing_now} Run `manage.py recompute` first.")
        if answer.cold_start:
            self.stdout.write("No events of their own yet: everyone's best messages.")
        for row in answer.excluded:
            self.stdout.write(f"not now: {row['message']}: {row['reason']}")
        if answer.nothing_now:
            self.stdout.write(answer.nothing_now)
        return [offer.as_dict() for offer in answer.offers]

    def _engine(self, workspace, customer, as_of, explore, seed, limit) -> list[dict]:
        try:
            ranked = memory_next_best(
                workspace=workspace,
                external_id=customer,
                explore=explore,
                seed=seed,
                as_of=parse_as_of(as_of),
                limit=limit,
            )
        except NoMemoryYet as error:
            raise CommandError(f"{error} Run `manage.py recompute` first.") from None
        return ranking_reasons(ranked)
