import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memory.management.commands._common import parse_as_of, workspace_or_error
from memory.models import RecomputeRun
from memory.recompute.runners import Progress
from memory.recompute.service import recompute_request


class Command(BaseCommand):
    help = "Recompute a workspace's memory (associations, habituation, priming), with progress."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("--as-of", help="Use only events strictly before this ISO time.")
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Only customers with events received since the last successful run.",
        )
        parser.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="Send the work to Celery workers and follow their progress.",
        )

    def handle(self, *args, workspace, as_of, incremental, run_async, **options):
        found = workspace_or_error(workspace)
        moment = parse_as_of(as_of)
        started = time.perf_counter()
        bar = tqdm(total=None, desc="shards", unit="shard", disable=options["verbosity"] == 0)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            run = recompute_request(
                workspace=found,
                as_of=moment,
                incremental=incremental,
                requested_by="command",
                on_workers=run_async,
                on_progress=progress,
            )
            if run_async:
                run = self._follow(run, progress)
        finally:
            bar.close()
        if run.status != RecomputeRun.Status.SUCCEEDED:
            raise CommandError(f"Recompute {run.pk} {run.status}: {run.error}")
        rows = run.stats.get("rows", {})
        self.stdout.write(
            self.style.SUCCESS(
                f"Recompute {run.pk} ({run.mode}) as of {run.as_of:%Y-%m-%d %H:%M:%S} UTC: "
                f"{run.customers} customers, {run.events} events, "
                + ", ".join(f"{count} {name} rows" for name, count in rows.items())
                + f" in {time.perf_counter() - started:.1f} s."
            )
        )

    def _follow(self, run: RecomputeRun, progress: Progress) -> RecomputeRun:
        while run.status in {RecomputeRun.Status.QUEUED, RecomputeRun.Status.RUNNING}:
            time.sleep(0.5)
            run.refresh_from_db()
            progress(run.shards_done, run.shards_total)
        return run
