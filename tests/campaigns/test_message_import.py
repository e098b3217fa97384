"""Importing messages from CSV: a report per line, and one bad line costs only itself."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from campaigns.catalogue.imports import messages_import_csv
from campaigns.models import AuditEntry, Message
from tests.campaigns.catalogue_support import SYSTEM, make_label, make_message

CSV = (
    "key,subject,body,labels\n"
    "fresh,Fresh beans,Roasted this week,value_proposition:discount;channel:email\n"
    ",No key,Body,\n"
    "two-vps,Two,Both,value_proposition:discount;value_proposition:convenience\n"
    'multi,"A subject, with a comma","Two\nlines",channel:email\n'
    "unknown,Hi,There,tone:zany\n"
    "fresh,Again,Dup,\n"
    "spring,Spring sale,25% off,value_proposition:discount\n"
)


@pytest.fixture
def taxonomy(workspace):
    make_label(workspace, "discount")
    make_label(workspace, "convenience")
    make_label(workspace, "email", set_slug="channel")
    make_message(workspace, "spring", "Spring sale", "20% off", ["value_proposition:discount"])
    return workspace


def test_it_reports_each_bad_line_and_saves_the_good_ones(taxonomy):
    report = messages_import_csv(workspace=taxonomy, actor=SYSTEM, text=CSV)
    assert (report.created, report.updated, report.unchanged) == (2, 1, 0)
    problems = [(p.line, p.field) for p in report.problems]
    # The quoted two-line body puts the next record on line 7.
    assert problems == [(3, "key"), (4, "labels"), (7, "labels"), (8, "key")]
    assert "tone:zany" in report.problems[2].reason
    assert "already on line 2" in report.problems[3].reason
    keys = set(Message.objects.for_workspace(taxonomy).values_list("key", flat=True))
    assert keys == {"fresh", "multi", "spring"}
    assert Message.objects.for_workspace(taxonomy).get(key="multi").body == "Two\nlines"
    assert Message.objects.for_workspace(taxonomy).get(key="spring").body == "25% off"
    assert AuditEntry.objects.for_workspace(taxonomy).filter(actor="test").count() >= 3


def test_it_changes_nothing_for_a_line_equal_to_the_stored_message(taxonomy):
    text = "key,subject,body,labels\nspring,Spring sale,20% off,value_proposition:discount\n"
    report = messages_import_csv(workspace=taxonomy, actor=SYSTEM, text=text)
    assert (report.unchanged, report.updated) == (1, 0)
    assert Message.objects.for_workspace(taxonomy).get(key="spring").version == 1


def test_it_refuses_a_file_without_a_key_column(taxonomy):
    report = messages_import_csv(workspace=taxonomy, actor=SYSTEM, text="subject,body\nA,B\n")
    assert [(p.line, p.field) for p in report.problems] == [(1, "header")]


def test_it_imports_an_upload_in_the_browser(member_client, taxonomy):
    upload = SimpleUploadedFile("messages.csv", CSV.encode(), content_type="text/csv")
    response = member_client.post(reverse("catalogue-messages-import"), {"file": upload})
    page = response.content.decode()
    assert response.status_code == 200
    assert "2 created, 1 updated, 0 unchanged, 4 line(s) refused" in page
    assert "tone:zany" in page


def test_it_says_when_an_upload_is_not_utf8(member_client, taxonomy):
    upload = SimpleUploadedFile("m.csv", "key\ncafé\n".encode("latin-1"), content_type="text/csv")
    response = member_client.post(reverse("catalogue-messages-import"), {"file": upload})
    assert response.status_code == 400 and "not UTF-8" in response.content.decode()


def test_it_imports_from_the_command_line_with_the_same_report(taxonomy, tmp_path, capsys):
    path = tmp_path / "messages.csv"
    path.write_text(CSV)
    call_command("import_messages", "--workspace", taxonomy.slug, str(path), "--no-progress")
    out = capsys.readouterr().out
    assert "line 4: labels: A message carries one Value proposition label at most" in out
    assert "messages.csv: 2 created, 1 updated, 0 unchanged, 4 line(s) refused." in out
    with pytest.raises(CommandError, match="No workspace"):
        call_command("import_messages", "--workspace", "nope", str(path))
