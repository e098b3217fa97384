from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import ApiKey, Label, Message, Workspace
from campaigns.tenancy.services import api_key_authenticate


def test_it_creates_a_workspace_from_the_command_line(db):
    out = StringIO()
    call_command("create_workspace", "shop", "--name", "The Shop", stdout=out)
    assert Workspace.objects.get(slug="shop").name == "The Shop"
    assert "Created workspace 'shop'" in out.getvalue()


def test_it_refuses_a_duplicate_or_invalid_workspace_slug(workspace):
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_workspace", "acme")
    with pytest.raises(CommandError, match="slug"):
        call_command("create_workspace", "Not A Slug!")


def test_it_prints_a_working_api_key_once(workspace):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key", "--workspace", "acme", "--scopes", "write", stdout=out, stderr=err
    )
    raw_key = out.getvalue().strip()
    api_key = api_key_authenticate(raw_key=raw_key)
    assert api_key is not None and api_key.scopes == ["write"]
    assert "cannot be shown again" in err.getvalue()
    assert ApiKey.objects.for_workspace(workspace).get().key_hash != raw_key


def test_it_explains_a_bad_api_key_request(workspace):
    with pytest.raises(CommandError, match="No workspace"):
        call_command("create_api_key", "--workspace", "nope")
    with pytest.raises(CommandError, match="scopes"):
        call_command("create_api_key", "--workspace", "acme", "--scopes", "root")


def test_it_loads_the_demo_idempotently(db):
    for _ in range(2):
        out = StringIO()
        call_command("load_demo", "--offers-only", "--address", "127.0.0.1:8765", stdout=out)
    assert "http://127.0.0.1:8765/login/" in out.getvalue()
    demo = Workspace.objects.get(slug="demo")
    assert Message.objects.for_workspace(demo).count() == 10
    offer_types = Label.objects.for_workspace(demo).filter(label_set__slug="value_proposition")
    assert sorted(offer_types.values_list("slug", flat=True)) == [
        "bogo",
        "discount",
        "informational",
    ]
    assert offer_types.get(slug="bogo").name == "Buy one, get one free"
    assert demo.memberships.get().user.username == "demo"
