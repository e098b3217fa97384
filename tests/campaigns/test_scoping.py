import pytest

from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import Message
from campaigns.models.scoping import WorkspaceScopeError
from memory.models import Customer


@pytest.fixture
def two_workspaces_with_messages(workspace, other_workspace):
    messages_upsert(workspace=workspace, specs=[MessageSpec(key="spring", subject="Ours")])
    messages_upsert(workspace=other_workspace, specs=[MessageSpec(key="autumn", subject="Theirs")])
    return workspace, other_workspace


@pytest.mark.parametrize(
    "query",
    [
        lambda: list(Message.objects.all()),
        lambda: Message.objects.filter(key="spring").first(),
        lambda: Message.objects.get(key="spring"),
        lambda: Message.objects.count(),
        lambda: Message.objects.exists(),
        lambda: Message.objects.update(subject="x"),
        lambda: Message.objects.filter(key="spring").delete(),
        lambda: list(Message.objects.values_list("key", flat=True)),
        lambda: list(Message.objects.iterator()),
        lambda: Customer.objects.filter(external_id="u1").exists(),
    ],
    ids=[
        "all",
        "first",
        "get",
        "count",
        "exists",
        "update",
        "delete",
        "values",
        "iterator",
        "customer",
    ],
)
def test_it_refuses_queries_without_a_workspace(two_workspaces_with_messages, query):
    with pytest.raises(WorkspaceScopeError, match="without a workspace"):
        query()


def test_it_returns_only_the_scoped_workspace_rows(two_workspaces_with_messages):
    workspace, other = two_workspaces_with_messages
    assert list(Message.objects.for_workspace(workspace).values_list("key", flat=True)) == [
        "spring"
    ]
    assert list(Message.objects.for_workspace(other.pk).values_list("key", flat=True)) == ["autumn"]


def test_it_keeps_the_scope_through_chained_calls(two_workspaces_with_messages):
    workspace, _ = two_workspaces_with_messages
    queryset = Message.objects.for_workspace(workspace).filter(active=True).order_by("key")
    assert queryset.exclude(key="nothing").count() == 1


def test_it_reads_every_workspace_only_when_asked_explicitly(two_workspaces_with_messages):
    keys = Message.objects.all_workspaces().order_by("key").values_list("key", flat=True)
    assert list(keys) == ["autumn", "spring"]


def test_it_rejects_none_as_a_scope(workspace):
    with pytest.raises(WorkspaceScopeError):
        Message.objects.for_workspace(None)


def test_it_leaves_a_refused_update_without_effect(two_workspaces_with_messages):
    with pytest.raises(WorkspaceScopeError):
        Message.objects.update(subject="overwritten")
    subjects = Message.objects.all_workspaces().values_list("subject", flat=True)
    assert sorted(subjects) == ["Ours", "Theirs"]
