import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Label, LabelSet, Message
from memory.models import Customer, Event


def _customer(workspace, external_id="u-1"):
    return Customer.objects.create(workspace=workspace, external_id=external_id)


def test_it_allows_the_same_customer_id_in_two_workspaces(workspace, other_workspace):
    _customer(workspace)
    _customer(other_workspace)
    assert Customer.objects.all_workspaces().filter(external_id="u-1").count() == 2


def test_it_rejects_a_duplicate_customer_id_in_one_workspace(workspace):
    _customer(workspace)
    with pytest.raises(IntegrityError), transaction.atomic():
        _customer(workspace)
    assert Customer.objects.for_workspace(workspace).count() == 1


def test_it_rejects_a_duplicate_message_key_in_one_workspace(workspace, other_workspace):
    Message.objects.create(workspace=workspace, key="welcome")
    Message.objects.create(workspace=other_workspace, key="welcome")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(workspace=workspace, key="welcome")


def test_it_rejects_a_duplicate_event_dedup_key_in_one_workspace(workspace, other_workspace):
    now = timezone.now()
    for ws in (workspace, other_workspace):
        Event.objects.create(
            workspace=ws,
            customer=_customer(ws),
            name="Order Completed",
            occurred_at=now,
            dedup_key="msg-1",
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(
            workspace=workspace,
            customer=Customer.objects.for_workspace(workspace).get(),
            name="Order Completed",
            occurred_at=now,
            dedup_key="msg-1",
        )
    assert Event.objects.for_workspace(workspace).count() == 1


def test_it_keeps_label_boosts_between_minus_one_and_one(workspace):
    label_set = LabelSet.objects.for_workspace(workspace).get(slug="value_proposition")
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(
            workspace=workspace, label_set=label_set, slug="discount", name="Discount", boost=1.5
        )


def test_it_creates_the_default_label_sets_with_a_workspace(workspace):
    slugs = LabelSet.objects.for_workspace(workspace).values_list("slug", flat=True)
    assert sorted(slugs) == ["channel", "tone", "value_proposition"]
