"""The evaluate command: its table and report show calibration beside discrimination."""

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.memory.engine_fixtures import AS_OF, load_synthetic


def evaluated(workspace, tmp_path) -> tuple[list[str], Path]:
    """Run the command on a synthetic workspace: its printed lines and its report's path."""
    load_synthetic(workspace, customers=80, events=8_000)
    out, report = io.StringIO(), tmp_path / "eval.html"
    call_command(
        "evaluate",
        workspace=workspace.slug,
        cutoff=AS_OF.isoformat(),
        window=72,
        report=report,
        stdout=out,
        stderr=io.StringIO(),
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
