"""The guardrails and overrides pages: editors change, viewers read, errors stand by the field."""

import re

from campaigns.catalogue.labels import label_update
from campaigns.models import AuditEntry, Guardrail, Override
from campaigns.tenancy.changes import Actor


def test_an_editor_creates_a_cap_and_sees_it_listed(member_client, workspace, strategy_catalogue):
    response = member_client.post(
        "/guardrails/new/",
        {
            "name": "Two discounts a week",
            "kind": "frequency_cap",
            "label": strategy_catalogue["discount"].pk,
            "limit": 2,
            "period": "week",
        },
    )
    assert response.status_code == 302
    guardrail = Guardrail.objects.for_workspace(workspace).get()
    assert guardrail.created_by == "marketer"
    page = member_client.get("/guardrails/").content.decode()
    assert "Two discounts a week" in page and "at most 2" in page
    assert AuditEntry.objects.for_workspace(workspace).filter(object_type="guardrail").count() == 1


def test_form_errors_stand_beside_their_fields(member_client, workspace, strategy_catalogue):
    response = member_client.post(
        "/guardrails/new/", {"name": "Nights", "kind": "quiet_hours", "quiet_start": "22:00"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    field = re.search(
        r'<div class="field has-error" id="field-quiet_end">(.*?)</label>.*?</div>', html, re.S
    )
    assert field is not None
    assert "Give the local time they end." in html[field.start() : field.start() + 1200]
    assert 'class="field has-error" id="field-quiet_start"' not in html
    assert not Guardrail.objects.for_workspace(workspace).exists()


def test_a_viewer_reads_but_cannot_change(viewer_client, workspace, strategy_catalogue):
    guardrail = Guardrail.objects.create(
        workspace=workspace,
        name="Nights",
        kind="quiet_hours",
        quiet_start="22:00",
        quiet_end="07:00",
    )
    page = viewer_client.get("/guardrails/")
    assert page.status_code == 200 and b"Nights" in page.content
    assert b"New guardrail" not in page.content and b"Archive" not in page.content
    assert viewer_client.get("/guardrails/new/").status_code == 403
    assert (
        viewer_client.post(f"/guardrails/{guardrail.pk}/active/", {"active": "0"}).status_code
        == 403
    )
    assert viewer_client.get("/overrides/").status_code == 200
    assert viewer_client.post("/overrides/new/", {}).status_code == 403
    guardrail.refresh_from_db()
    assert guardrail.active


def test_an_editor_pins_a_label_for_a_segment_and_archives_it(
    member_client, workspace, strategy_catalogue
):
    urgency = strategy_catalogue["urgency"]
    response = member_client.post(
        "/overrides/new/",
        {
            "segment": '{"all": [{"trait": "plan", "equals": "pro"}]}',
            "label": urgency.pk,
            "action": "pin",
            "value": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    override = Override.objects.for_workspace(workspace).get()
    page = member_client.get("/overrides/").content.decode()
    assert "segment plan = &quot;pro&quot;" in page and "never" in page and "marketer" in page
    member_client.post(
        f"/overrides/{override.pk}/active/", {"active": "0", "version": override.version}
    )
    override.refresh_from_db()
    assert not override.active


def test_an_override_form_refuses_an_empty_scope_beside_the_segment(
    member_client, strategy_catalogue
):
    response = member_client.post(
        "/overrides/new/", {"label": strategy_catalogue["urgency"].pk, "action": "forget"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    segment = html[html.index('id="field-segment"') :][:1200]
    assert "for everyone, set the label&#x27;s boost" in segment


def test_the_overrides_page_lists_boosts_as_the_override_for_everyone(
    member_client, workspace, strategy_catalogue
):
    discount = strategy_catalogue["discount"]
    label_update(
        workspace=workspace,
        actor=Actor.system("anna"),
        label=discount,
        changes={"boost": 0.5},
        expected_version=None,
    )
    html = member_client.get("/overrides/").content.decode()
    boosts = html[html.index('id="boosts"') :]
    assert f'href="/catalogue/labels/{discount.pk}/"' in boosts
    assert "raised (0.50)" in boosts and "anna" in boosts
