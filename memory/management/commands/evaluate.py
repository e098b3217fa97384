import sys
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memory.evaluation import (
    decision_rows,
    evaluation_report_write,
    levels_over_time,
    memory_evaluate,
    rolling_rows,
)
from memory.management.commands._common import parse_as_of, workspace_or_error


def moment_of(hours: float) -> datetime:
    """Return the UTC time of an engine clock reading (hours since the epoch)."""
    return datetime.fromtimestamp(hours * 3600.0, UTC)


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
        parser.add_argument(
            "--randomised-sends",
            action="store_true",
            help="Declare that each send's message was drawn uniformly among the messages of its "
            "wave (as in the Starbucks data): the policies' off-policy values are then unbiased. "
            "Without it no value is printed.",
        )
        parser.add_argument(
            "--segment",
            default="gender,income",
            help="Traits whose combination is a segment for the 'best per segment' policy "
            "(numeric ones in three quantile bands; default: gender,income).",
        )
        parser.add_argument(
            "--no-rolling",
            action="store_true",
            help="Skip the rolling (nightly re-cut) evaluation.",
        )

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
                workspace=found,
                cutoff=moment,
                window_h=window_h,
                randomised_sends=options["randomised_sends"],
                segment_traits=tuple(t.strip() for t in options["segment"].split(",") if t.strip()),
                rolling=not options["no_rolling"],
                on_progress=progress,
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
        self.stdout.write(
            f"cold start: {evaluation.cold_start_sends} scored sends went to customers without an "
            "event before the cut-off, scored from the population and their trait segment."
        )
        self.write_rolling(evaluation)
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
        self.write_decisions(evaluation)
        if report:
            evaluation_report_write(
                workspace=found, evaluation=evaluation, cutoff=moment, path=report
            )
            self.stderr.write(f"Report written to {report}.")

    def write_rolling(self, evaluation):
        """Print the frozen and the rolling scores side by side."""
        rows = rolling_rows(evaluation)
        if not rows:
            return
        cuts = evaluation.rolling_cuts
        self.stdout.write(
            f"\nRolling evaluation: re-cut at {cuts.height} midnights from the cut-off, each send "
            "scored by the memory and model of the night before (frozen: one cut).\n"
            f"{'model':36s} {'AUC frozen':>10s} {'rolling':>8s} {'log loss frozen':>15s} "
            f"{'rolling':>8s} {'ECE frozen':>10s} {'rolling':>8s}"
        )
        for row in rows:
            self.stdout.write(
                f"{row['model']:36s} {row['frozen_auc']:10.4f} {row['rolling_auc']:8.4f} "
                f"{row['frozen_log_loss']:15.4f} {row['rolling_log_loss']:8.4f} "
                f"{row['frozen_ece']:10.3f} {row['rolling_ece']:8.3f}"
            )

    def write_decisions(self, evaluation):
        """Print the randomisation check and each policy's off-policy value."""
        decisions = evaluation.decisions
        if decisions is None:
            return
        check = decisions.check
        self.stdout.write("\nRandomisation check: each message's share of a wave's sends")
        for wave in check.waves.iter_rows(named=True):
            self.stdout.write(
                f"  wave from {moment_of(wave['start_t']):%Y-%m-%d %H:%M}: "
                f"{wave['sends']:6d} sends, "
                f"{wave['messages']} messages, shares {wave['min_share']:.3f}-"
                f"{wave['max_share']:.3f}, chi-square p (equally likely) {wave['uniform_p']:.3f}"
            )
        self.stdout.write(
            f"  message independent of segment ({' x '.join(decisions.segment_traits)}) within "
            f"waves: chi-square {check.independence_chi2:.1f} on {check.independence_dof} df, "
            f"p {check.independence_p:.3f}"
        )
        if not decisions.randomised:
            self.stdout.write(
                "No unbiased estimate of a policy's value is possible: the sends are not declared "
                "randomised (--randomised-sends) and no logged decision carries a propensity."
            )
            return
        declared = decisions.propensities == "declared"
        if declared and (check.uniform_p < 0.01 or check.independence_p < 0.01):
            self.stdout.write(
                "Warning: the data contradict the declared randomisation (p < 0.01): the values "
                "below may be biased."
            )
        if decisions.propensities == "logged":
            basis = (
                f"{decisions.logged_sends} of them matched to a decision Primer logged, each "
                "valued with its logged propensity among that decision's eligible messages"
            )
        else:
            basis = "propensity 1/messages of the wave"
        for outcome, rows in decision_rows(evaluation).items():
            self.stdout.write(
                f"\nOff-policy value, outcome {outcome} per send (95% intervals, customers "
                f"resampled), {decisions.sends} sends after the cut-off, {basis}:"
            )
            self.stdout.write(
                f"{'policy':26s} {'matches':>7s} {'IPS':>8s} {'SNIPS':>8s} {'DR':>24s} "
                f"{'difference from the average best':>36s}"
            )
            for row in rows:
                estimates, difference = row["estimates"], row["difference"]
                dr = estimates.get("dr")
                dr_text = f"{dr.value:8.4f} [{dr.low:.4f}, {dr.high:.4f}]" if dr else "-"
                detectable = (
                    f", detectable {row['detectable']:.3f}" if row["detectable"] is not None else ""
                )
                self.stdout.write(
                    f"{row['policy']:26s} {row['matches']:7d} {estimates['ips'].value:8.4f} "
                    f"{estimates['snips'].value:8.4f} {dr_text:>24s}   "
                    f"{row['difference_by']} {difference.value:+.4f} "
                    f"[{difference.low:+.4f}, {difference.high:+.4f}]{detectable}"
                )
        self.stdout.write(
            "matches: sends whose logged message the policy would have chosen (with exploration: "
            "could have). detectable: the smallest goal-rate difference a two-proportion test "
            "would detect at these matches (80% power, 5% level)."
        )
