"""export_config and import_config move a taxonomy between workspaces: idempotent, all or nothing,
audited as the system, with the path of what is wrong."""

import json

import pytest
from django.core.management import CommandError, call_command

from campaigns.catalogue.campaign_services import campaign_create
from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import AuditEntry, Campaign, Label, Message, PromptTemplate
from campaigns.prompts.services import prompt_template_create
from campaigns.tenancy.changes import Actor
from campaigns.transfer import config_export


@pytest.fixture
def source(workspace):
    messages_upsert(
        workspace=workspace,
        specs=[
            MessageSpec(key="bogo", subject="Buy one", labels={"value_proposition": ["discount"]}),
            MessageSpec(key="tips", body="Brew tips", labels={"value_proposition": ["craft"]}),
        ],
    )
    Label.objects.for_workspace(workspace).filter(slug="discount").update(
        prompt_phrase="a good deal", boost=0.3, description="Money off"
    )
    template = prompt_template_create(
        workspace=workspace, slug="short", name="Short", text="Hello {{ customer.id }}"
    )
    campaign_create(
        workspace=workspace,
        actor=Actor.system(),
        slug="spring",
        name="Spring",
        messages=list(Message.objects.for_workspace(workspace).filter(key="bogo")),
        prompt_template=template,
        guidance="Be brief.",
        attribution_window_h=24,
    )
    return workspace


def first_label(data: dict) -> dict:
    return next(s for s in data["label_sets"] if s["labels"])["labels"][0]


def export_file(workspace, tmp_path) -> str:
    out = tmp_path / "config.json"
    call_command("export_config", workspace=workspace.slug, out=str(out))
    return str(out)


def test_it_copies_a_taxonomy_into_another_workspace(source, other_workspace, tmp_path, capsys):
    path = export_file(source, tmp_path)
    call_command("import_config", path, workspace=other_workspace.slug)
    assert "created:" in capsys.readouterr().out
    discount = Label.objects.for_workspace(other_workspace).get(slug="discount")
    assert (discount.prompt_phrase, discount.boost, discount.description) == (
        "a good deal",
        0.3,
        "Money off",
    )
    assert discount.boost_set_by == "import_config"
    bogo = Message.objects.for_workspace(other_workspace).get(key="bogo")
    assert [str(label) for label in bogo.labels.all()] == ["value_proposition:discount"]
    spring = Campaign.objects.for_workspace(other_workspace).get(slug="spring")
    assert spring.prompt_template.current_version.text == "Hello {{ customer.id }}"
    assert [m.key for m in spring.messages.all()] == ["bogo"]
    assert spring.attribution_window_h == 24 and spring.guidance == "Be brief."
    actors = set(AuditEntry.objects.for_workspace(other_workspace).values_list("actor", flat=True))
    assert actors == {"import_config"}
    copied = config_export(workspace=other_workspace)
    original = config_export(workspace=source)
    for part in ("label_sets", "messages", "prompt_templates", "campaigns"):
        assert copied[part] == original[part], part


def test_it_changes_nothing_the_second_time(source, other_workspace, tmp_path, capsys):
    path = export_file(source, tmp_path)
    call_command("import_config", path, workspace=other_workspace.slug)
    audited = AuditEntry.objects.for_workspace(other_workspace).count()
    versions = sorted(
        Campaign.objects.for_workspace(other_workspace).values_list("version", flat=True)
    )
    capsys.readouterr()
    call_command("import_config", path, workspace=other_workspace.slug)
    assert "created: nothing; changed: nothing" in capsys.readouterr().out
    assert AuditEntry.objects.for_workspace(other_workspace).count() == audited
    assert (
        sorted(Campaign.objects.for_workspace(other_workspace).values_list("version", flat=True))
        == versions
    )
    assert PromptTemplate.objects.for_workspace(other_workspace).get().versions.count() == 1


def test_it_updates_what_changed(source, other_workspace, tmp_path):
    path = export_file(source, tmp_path)
    call_command("import_config", path, workspace=other_workspace.slug)
    data = json.loads((tmp_path / "config.json").read_text())
    data["messages"][0]["labels"] = ["value_proposition:craft"]
    data["prompt_templates"][0]["text"] = "Hi {{ customer.id }}"
    (tmp_path / "config.json").write_text(json.dumps(data))
    call_command("import_config", path, workspace=other_workspace.slug)
    bogo = Message.objects.for_workspace(other_workspace).get(key="bogo")
    assert [label.slug for label in bogo.labels.all()] == ["craft"]
    template = PromptTemplate.objects.for_workspace(other_workspace).get()
    assert template.current_version.number == 2


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            lambda d: d["campaigns"][0].update(audience=[{"trait": "x", "min": "y"}]),
            "campaigns[0].audience",
        ),
        (
            lambda d: d["messages"][1].update(labels=["value_proposition:nope"]),
            "messages[1].labels",
        ),
        (lambda d: first_label(d).update(boost=5), ".labels[0].boost"),
        (lambda d: first_label(d).update(boost="high"), ".labels[0].boost"),
        (lambda d: d["campaigns"][0].update(starts_at="soon"), "campaigns[0].starts_at"),
        (lambda d: d.update(format="other"), "format"),
    ],
)
def test_it_names_the_bad_field_and_imports_nothing(
    source, other_workspace, tmp_path, change, where
):
    path = export_file(source, tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    change(data)
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(CommandError, match=r"Nothing was imported") as refused:
        call_command("import_config", path, workspace=other_workspace.slug)
    assert where in str(refused.value)
    assert not Message.objects.for_workspace(other_workspace).exists()
    assert not Label.objects.for_workspace(other_workspace).exists()
    assert not AuditEntry.objects.for_workspace(other_workspace).exists()


def test_it_gives_the_line_of_broken_json(other_workspace, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "format": "primer-config",\n  "version": 1,,\n}')
    with pytest.raises(CommandError, match=r"line 3 column 16: not JSON"):
        call_command("import_config", str(broken), workspace=other_workspace.slug)
