"""Write preference pairs conditioned on each customer's memory (DPO or SFT), with a card."""

from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from campaigns.models import Workspace
from campaigns.prompts.engine import TemplateProblem
from campaigns.prompts.preferences import FORMATS, PreferenceOptions, preferences_export


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_datetime(value) or datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(
            f"--cutoff {value!r} is not an ISO-8601 time, e.g. 2018-01-22T00:00:00Z."
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Export pairs of messages each customer preferred and passed over, with the system "
        "prompt of their memory just before the earlier send (TRL's conversational JSON Lines)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--format", choices=FORMATS, default="dpo")
        parser.add_argument(
            "--out", required=True, help="The train file (eval, holdout and card beside it)."
        )
        parser.add_argument(
            "--cutoff", help="Train before this time, evaluate after it (ISO-8601, UTC default)."
        )
        parser.add_argument("--max-pairs", type=int, default=3, help="Per customer and split.")
        parser.add_argument(
            "--min-evidence", type=int, default=0, help="Sends the customer had before the pair."
        )
        parser.add_argument(
            "--holdout-percent", type=int, default=0, help="Customers held out whole (0-100)."
        )
        parser.add_argument(
            "--meta", action="store_true", help="Add a meta object (customer, sends) per line."
        )

    def handle(self, *args, **options):
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace {options['workspace']!r}.")
        chosen = PreferenceOptions(
            format=options["format"],
            max_pairs=options["max_pairs"],
            min_evidence=options["min_evidence"],
            cutoff=_moment(options["cutoff"]),
            holdout_percent=options["holdout_percent"],
            meta=options["meta"],
        )
        problems = chosen.problems()
        if problems:
            raise CommandError(
                "; ".join(f"--{name.replace('_', '-')} {why}" for name, why in problems.items())
            )
        out = Path(options["out"])
        if not out.parent.is_dir():
            raise CommandError(f"--out: the folder {str(out.parent)!r} does not exist.")
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(
                    total=total,
                    desc=stage,
                    unit="pair" if "pairs" in stage else "step",
                    file=self.stderr._out,
                )
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            result = preferences_export(
                workspace=workspace, options=chosen, out=out, on_progress=progress
            )
        except TemplateProblem as error:
            raise CommandError(str(error)) from None
        finally:
            for bar in bars.values():
                bar.close()
        counts = result.counts
        written = ", ".join(
            f"{counts[f'{split}_lines']} {split} ({path})" for split, path in result.files.items()
        )
        self.stdout.write(
            f"Wrote {written}; dataset card {result.card}; {len(result.snapshots)} memory "
            f"snapshots in {result.seconds:.1f} s."
        )
