"""export_config and import_config carry guardrails and segment overrides (not a customer's own)."""

from datetime import time

from django.core.management import call_command

from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import Guardrail, Label, Override
from campaigns.strategy.services import guardrail_create, override_create
from campaigns.tenancy.changes import Actor
from campaigns.transfer import config_export
from memory.models import Customer

ANNA = Actor.system("anna")


def test_guardrails_and_segment_overrides_move_and_a_second_import_changes_nothing(
    workspace, other_workspace, tmp_path, capsys
):
    messages_upsert(
        workspace=workspace,
        specs=[MessageSpec(key="bogo", subject="Buy one", labels={"value_proposition": ["deal"]})],
    )
    deal = Label.objects.for_workspace(workspace).get(slug="deal")
    for ws in (workspace, other_workspace):
        Customer.objects.create(workspace=ws, external_id="c-1", traits={"plan": "pro"})
    guardrail_create(
        workspace=workspace,
        actor=ANNA,
        name="Two deals a week",
        kind="frequency_cap",
        label=deal,
        limit=2,
        period="week",
    )
    guardrail_create(
        workspace=workspace,
        actor=ANNA,
        name="Nights",
        kind="quiet_hours",
        quiet_start=time(22),
        quiet_end=time(7, 30),
    )
    override_create(
        workspace=workspace,
        actor=ANNA,
        segment={"all": [{"trait": "plan", "equals": "pro"}]},
        label=deal,
        action="lower",
        value=0.5,
    )
    override_create(
        workspace=workspace, actor=ANNA, customer_external_id="c-1", label=deal, action="forget"
    )
    out = tmp_path / "config.json"
    call_command("export_config", workspace=workspace.slug, out=str(out))
    call_command("import_config", str(out), workspace=other_workspace.slug)
    assert "2 guardrails" in capsys.readouterr().out
    copied = config_export(workspace=other_workspace)
    original = config_export(workspace=workspace)
    assert copied["guardrails"] == original["guardrails"]
    assert copied["overrides"] == original["overrides"] and len(copied["overrides"]) == 1
    assert not Override.objects.for_workspace(other_workspace).exclude(customer_external_id="")
    nights = Guardrail.objects.for_workspace(other_workspace).get(name="Nights")
    assert (nights.quiet_start, nights.quiet_end) == (time(22), time(7, 30))

    call_command("import_config", str(out), workspace=other_workspace.slug)
    assert "created: nothing; changed: nothing" in capsys.readouterr().out
