"""The memory page marks the configuration changes made between recompute runs."""

import pytest
from django.urls import reverse

from campaigns.models import Label
from campaigns.tenancy.changes import Actor, change_update
from tests.memory.engine_fixtures import AS_OF, load_synthetic, recompute_here

pytestmark = pytest.mark.django_db


def boost(workspace, member, value: float) -> None:
    label = Label.objects.for_workspace(workspace).get(label_set__slug="offer", slug="discount")
    change_update(
        workspace=workspace,
        actor=Actor.of_user(member),
        obj=label,
        changes={"boost": value},
        expected_version=None,
        audited=["boost"],
    )


def test_it_marks_each_change_under_the_run_it_preceded_and_the_pending_ones(
    member_client, member, workspace
):
    load_synthetic(workspace, customers=20, events=1_500)
    first = recompute_here(workspace=workspace, as_of=AS_OF)
    boost(workspace, member, 0.3)
    second = recompute_here(workspace=workspace, as_of=AS_OF)
    boost(workspace, member, -0.5)

    page = member_client.get(reverse("memory-overview")).content.decode()
    runs_table = page[page.index('id="runs"') :]
    second_row = runs_table.index(f"<td>{second.pk}</td>")
    first_row = runs_table.index(f"<td>{first.pk}</td>")
    change = "boost of offer:discount 0 → 0.3"
    # Newest run first: the change made before the second run sits under its row only.
    assert second_row < runs_table.index(change) < first_row
    assert runs_table.count(change) == 1
    pending = page[page.index('id="changes-pending"') : page.index('id="runs"')]
    assert "boost of offer:discount 0.3 → -0.5" in pending and member.username in pending


def test_it_shows_no_marks_without_changes(member_client, workspace):
    load_synthetic(workspace, customers=20, events=1_500)
    recompute_here(workspace=workspace, as_of=AS_OF)
    page = member_client.get(reverse("memory-overview")).content.decode()
    assert 'id="changes-pending"' not in page and "Changed before this run" not in page
