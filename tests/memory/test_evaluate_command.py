"""The evaluate command: its table and report show calibration beside discrimination."""

import io

import pytest
from django.core.management import call_command

from tests.memory.engine_fixtures import AS_OF, load_synthetic


@pytest.mark.django_db
def test_it_prints_and_reports_each_models_calibration(workspace, tmp_path):
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
    lines = out.getvalue().splitlines()
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
