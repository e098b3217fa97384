"""Helpers of the configuration tests: API calls with a key, keys of each scope, roles."""

import pytest

from campaigns.models import Membership
from campaigns.tenancy.services import api_key_create


def auth(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def api(client, method: str, url: str, key: str | None = None, data=None):
    """Call the API as a key (or the client's session), with a JSON body."""
    call = getattr(client, method)
    headers = auth(key) if key else {}
    if data is None:
        return call(url, **headers)
    return call(url, data=data, content_type="application/json", **headers)


@pytest.fixture
def config_key(workspace):
    _, raw_key = api_key_create(workspace=workspace, scopes=["read", "config"], name="crm sync")
    return raw_key


@pytest.fixture
def admin_key(workspace):
    _, raw_key = api_key_create(workspace=workspace, scopes=["read", "admin"], name="ops")
    return raw_key


@pytest.fixture
def their_config_key(other_workspace):
    _, raw_key = api_key_create(
        workspace=other_workspace, scopes=["read", "config", "admin"], name="theirs"
    )
    return raw_key


@pytest.fixture
def owner(make_user, workspace):
    return make_user("olivia", workspace=workspace, role=Membership.Role.OWNER)


@pytest.fixture
def viewer(make_user, workspace):
    return make_user("victor", workspace=workspace, role=Membership.Role.VIEWER)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client
