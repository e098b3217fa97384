"""The evaluate command: its table and report show calibration beside discrimination."""

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from memory.models import Decision, Event
from tests.memory.engine_fixtures import AS_OF, load_synthetic


def evaluated(workspace, tmp_path, *flags, **options) -> tuple[list[str], Path]:
    """Run the command on a synthetic workspace: its printed lines and its report's path."""
    load_synthetic(workspace, customers=80, events=8_000)
    out, report = io.StringIO(), tmp_path / "eval.html"
    call_command(
        "evaluate",
        *flags,
        workspace=workspace.slug,
        cutoff=AS_OF.isoformat(),
        window=72,
        report=report,
        stdout=out,
        stderr=io.StringIO(),
        **options,
    )
    return out.getvalue().splitlines(), report


@pytest.mark.django_db
def test_it_prints_and_reports_each_models_calibration(workspace, tmp_path):
    lines, report = evaluated(workspace, tmp_path)
    header = next(line for line in lines if line.startswith("model"))
    assert header.split()[-6:] == ["mean", "p", "p", "-", "rate", "ECE"]
    full = next(line for line in lines if line.startswith("full memory "))
    mean_p, gap, ece = (float(x) for x in full.split()[-3:])
    assert 0 < mean_p < 1 and 0 <= ece < 1
    # The gap is printed with its sign and can never exceed the ECE.
    assert abs(gap) <= ece + 0.001
    html = report.read_text()
    assert "Mean p \u2212 goal rate" in html
    # The reliability chart names each model with its ECE, as the table prints it.
    assert f"full memory (ECE {ece:.3f})" in html


@pytest.mark.django_db
def test_it_sets_the_goal_rate_before_the_cut_off_beside_the_scored_sends(workspace, tmp_path):
    lines, report = evaluated(workspace, tmp_path)
    replayed = [line for line in lines if line.strip().startswith("replayed from ")]
    scored_prefix = f"scored from {AS_OF:%Y-%m-%d}"
    scored = next(line for line in lines if line.strip().startswith(scored_prefix))
    assert len(replayed) >= 2
    full = next(line for line in lines if line.startswith("full memory "))
    # The scored row repeats the full memory's mean p from the table.
    assert scored.endswith(f"mean p {float(full.split()[-3]):.3f}")
    html = report.read_text()
    assert html.count("<td>replayed") == len(replayed)
    assert "replayed, calibration" in html  # the newest slice, listed last


def evaluated_decisions(workspace, tmp_path, *flags) -> tuple[list[str], str]:
    """Run the command segmenting by plan and age; the synthetic sends pick messages at random."""
    lines, report = evaluated(workspace, tmp_path, *flags, segment="plan,age")
    return lines, report.read_text()


@pytest.mark.django_db
def test_it_prints_no_policy_value_unless_the_sends_are_declared_random(workspace, tmp_path):
    lines, html = evaluated_decisions(workspace, tmp_path)
    assert any(line.startswith("No unbiased estimate") for line in lines)
    assert not any(line.startswith("Off-policy value") for line in lines)
    # The check itself is printed either way: the synthetic sends pick messages uniformly.
    independence = next(line for line in lines if "independent of segment (plan x age)" in line)
    assert float(independence.rsplit("p ", 1)[1]) > 0.001
    assert 'id="no-estimate"' in html


@pytest.mark.django_db
def test_it_values_each_policy_against_the_average_customers_best(workspace, tmp_path):
    lines, html = evaluated_decisions(workspace, tmp_path, "--randomised-sends")
    sends = int(lines[0].split()[0])
    start = next(
        i for i, line in enumerate(lines) if line.startswith("Off-policy value, outcome goal")
    )
    rows = {line[:26].strip(): line[26:] for line in lines[start + 2 : start + 8]}
    assert list(rows) == [
        "logging policy",
        "average customer's best",
        "best per segment",
        "Primer next best",
        "Primer with exploration",
        "Primer, 10% explored",
    ]
    # Primer's best but for a tenth at random matches its top's sends and a tenth of the rest.
    assert int(rows["Primer, 10% explored"].split()[0]) == sends
    # The logging policy matches every send; a single choice matches about one in the messages.
    assert int(rows["logging policy"].split()[0]) == sends
    assert 0 < int(rows["Primer next best"].split()[0]) < sends / 5
    # The reference differs from itself by exactly zero.
    assert "DR +0.0000 [+0.0000, +0.0000]" in rows["average customer's best"]
    assert html.count("<td>Primer next best</td>") == 1


@pytest.mark.django_db
def test_it_reports_the_rolling_evaluation_beside_the_frozen_one(workspace, tmp_path):
    lines, html = evaluated_decisions(workspace, tmp_path)
    header = next(i for i, line in enumerate(lines) if line.startswith("Rolling evaluation"))
    cuts = int(lines[header].split("re-cut at ")[1].split()[0])
    assert cuts >= 2
    frozen = {
        line.split("  ")[0]: line.split() for line in lines if line.startswith("full memory ")
    }
    rolling = next(line for line in lines[header:] if line.startswith("full memory "))
    # Same model, same sends: the frozen AUC is repeated, the rolling one stands beside it.
    assert rolling.split()[2] == frozen["full memory"][2]
    assert 0.5 < float(rolling.split()[3]) < 1
    assert 'id="rolling"' in html


@pytest.mark.django_db
def test_it_values_policies_with_the_propensities_primer_logged(workspace, tmp_path):
    """Decisions logged uniformly over the wave's messages give exactly the declared values."""
    load_synthetic(workspace, customers=80, events=8_000)
    sends = Event.objects.for_workspace(workspace).filter(name="Message Sent")
    offered = sorted(set(sends.values_list("message_id", flat=True)))
    share = 1.0 / len(offered)
    Decision.objects.bulk_create(
        Decision(
            workspace=workspace,
            public_id=f"d{event_id}",
            customer_id=customer_id,
            source=Decision.Source.API,
            policy="uniform",
            eligible=offered,
            eligible_count=len(offered),
            propensities=[share] * len(offered),
            message_id=message_id,
            propensity=share,
            decided_at=at,
            window_h=72,
            expires_at=at,
            send_event_id=event_id,
            sent_at=at,
            matched_by="decision_id",
        )
        for event_id, customer_id, message_id, at in sends.filter(
            occurred_at__gte=AS_OF
        ).values_list("pk", "customer_id", "message_id", "occurred_at")
    )

    def run(*flags) -> list[str]:
        out = io.StringIO()
        call_command(
            "evaluate",
            *flags,
            workspace=workspace.slug,
            cutoff=AS_OF.isoformat(),
            window=72,
            segment="plan,age",
            no_rolling=True,
            stdout=out,
            stderr=io.StringIO(),
        )
        return out.getvalue().splitlines()

    logged, declared = run(), run("--randomised-sends")
    assert not any(line.startswith("No unbiased estimate") for line in logged)
    header = next(line for line in logged if line.startswith("Off-policy value, outcome goal"))
    assert "matched to a decision Primer logged" in header

    def table(lines):
        start = next(i for i, line in enumerate(lines) if line.startswith("Off-policy value"))
        return lines[start + 1 : start + 7]

    assert table(logged) == table(declared)
