import hmac

import pytest
from django.db import connection

from campaigns.models import ApiKey
from campaigns.tenancy.services import api_key_authenticate, api_key_create, api_key_revoke


def test_it_stores_only_a_hash_of_the_key(workspace):
    api_key, raw_key = api_key_create(workspace=workspace, scopes=["write"])
    assert raw_key.startswith(api_key.prefix)
    assert len(raw_key) > 40
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM campaigns_apikey")
        stored = [str(value) for row in cursor.fetchall() for value in row]
    assert not any(raw_key in value for value in stored)
    assert api_key.key_hash == ApiKey.hash_of(raw_key)


def test_it_authenticates_the_right_key_and_records_its_use(workspace):
    api_key, raw_key = api_key_create(workspace=workspace, scopes=["write", "read"])
    found = api_key_authenticate(raw_key=raw_key)
    assert found == api_key
    assert found.workspace == workspace
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.parametrize(
    "mangle", [lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), lambda k: "x" + k]
)
def test_it_refuses_a_wrong_key(workspace, mangle):
    _, raw_key = api_key_create(workspace=workspace, scopes=["write"])
    assert api_key_authenticate(raw_key=mangle(raw_key)) is None


def test_it_refuses_a_revoked_key(workspace):
    api_key, raw_key = api_key_create(workspace=workspace, scopes=["write"])
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(raw_key=raw_key) is None
    assert ApiKey.objects.for_workspace(workspace).get().revoked_at is not None


def test_it_compares_hashes_in_constant_time(workspace, monkeypatch):
    _, raw_key = api_key_create(workspace=workspace, scopes=["write"])
    calls = []
    real_compare_digest = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real_compare_digest(a, b)

    monkeypatch.setattr("campaigns.models.hmac.compare_digest", spy)
    assert api_key_authenticate(raw_key=raw_key) is not None
    assert api_key_authenticate(raw_key=raw_key[:-2] + "zz") is None
    assert len(calls) == 2


def test_it_rejects_unknown_scopes(workspace):
    with pytest.raises(ValueError, match="scopes"):
        api_key_create(workspace=workspace, scopes=["superpowers"])
