import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memory.evaluation import evaluation_report_write, levels_over_time, memory_evaluate
from memory.management.commands._common import parse_as_of, workspace_or_error


class Command(BaseCommand):
    help = (
        "Evaluate the memory offline: learn from events before --cutoff, predict the goal within "
        "--window hours of every later send, and compare with the population rate per message, "
        "the customer's baseline, and the memory with each part removed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("--cutoff", required=True, help="ISO time, e.g. 2018-01-22T00:00Z.")
        parser.add_argument(
            "--window", type=float, default=None, help="Hours (default: the workspace's window)."
        )
        parser.add_argument("--report", type=Path, help="Write an HTML report with the charts.")

    def handle(self, *args, workspace, cutoff, window, report, **options):
        found = workspace_or_error(workspace)
        moment = parse_as_of(cutoff)
        window_h = window or found.attribution_window_h
        if window_h <= 0:
            raise CommandError("--window must be a positive number of hours.")
        self.stderr.write(f"Learning from events before {moment:%Y-%m-%d %H:%M} UTC…")
        bar = tqdm(total=None, unit="step", disable=options["verbosity"] == 0, file=sys.stderr)

        def progress(stage: str, done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.set_description(stage)

        try:
            evaluation = memory_evaluate(
                workspace=found, cutoff=moment, window_h=window_h, on_progress=progress
            )
        finally:
            bar.close()
        if evaluation.test_sends == 0:
            raise CommandError("No send at or after the cut-off has a complete window to score.")
        self.stdout.write(
            f"{evaluation.test_sends} sends scored (goal rate {evaluation.goal_rate:.3f}), "
            f"window {window_h:g} h, {evaluation.training_sends} sends before the cut-off.\n"
        )
        self.stdout.write(
            f"{'model':36s} {'AUC':>7s} {'log loss':>9s} {'Brier':>7s} {'top 10%':>8s} "
            f"{'mean p':>7s} {'p - rate':>9s} {'ECE':>6s}"
        )
        for row in evaluation.scores.iter_rows(named=True):
            self.stdout.write(
                f"{row['model']:36s} {row['auc']:7.4f} {row['log_loss']:9.4f} "
                f"{row['brier']:7.4f} {row['top_decile_rate']:8.3f} {row['mean_p']:7.3f} "
                f"{row['mean_p'] - row['goal_rate']:+9.3f} {row['ece']:6.3f}"
            )
        self.stdout.write(
            "mean p - rate: calibration in the large (> 0: the model promises too much); "
            "ECE: |mean p - goal rate| averaged over the deciles of p."
        )
        levels = levels_over_time(evaluation, moment)
        if levels:
            self.stdout.write(
                "\nGoal rate after a send against the full memory's mean p, oldest first:"
            )
            for level in levels:
                self.stdout.write(
                    f"  {level['kind'].split(',')[0]} from {level['from']:%Y-%m-%d %H:%M}: "
                    f"{level['sends']:6d} sends, goal rate {level['goal_rate']:.3f}, "
                    f"mean p {level['mean_p']:.3f}"
                )
        if report:
            evaluation_report_write(
                workspace=found, evaluation=evaluation, cutoff=moment, path=report
            )
            self.stderr.write(f"Report written to {report}.")
