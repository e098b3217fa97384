"""Sign-in lockout on the login page and the admin: per user name and per address, in the DB."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse

from campaigns.models import LoginFailure

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
LOCKED = "Too many failed sign-ins"
# Nothing listens on port 1: the lockout must not need Redis.
REDIS_GONE = override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
)


def sign_in(client, username, password, *, path=None, address="203.0.113.7"):
    return client.post(
        path or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_it_locks_a_user_out_after_five_failures_even_with_the_right_password(client, member):
    with REDIS_GONE:
        for _ in range(4):
            assert LOCKED not in sign_in(client, "marketer", "wrong").content.decode()
        fifth = sign_in(client, "marketer", "wrong")
        assert LOCKED in fifth.content.decode()
        refused = sign_in(client, "marketer", PASSWORD)
    assert refused.status_code == 200
    assert "try again in 15 minutes" in refused.content.decode()
    assert not signed_in(client)


def test_it_counts_the_user_name_whatever_its_case_or_address(client, member):
    for index in range(5):
        sign_in(client, "Marketer", "wrong", address=f"198.51.100.{index}")
    assert LOCKED in sign_in(client, "marketer", PASSWORD, address="192.0.2.1").content.decode()
    assert not signed_in(client)


@override_settings(PRIMER_LOGIN_MAX_FAILURES_PER_ADDRESS=3)
def test_it_locks_out_an_address_guessing_many_user_names(client, member):
    for name in ("alice", "bob", "carol"):
        sign_in(client, name, "wrong")
    assert LOCKED in sign_in(client, "marketer", PASSWORD).content.decode()
    assert not signed_in(client)
    other_address = sign_in(client, "marketer", PASSWORD, address="192.0.2.50")
    assert other_address.status_code == 302 and signed_in(client)


def test_it_lets_the_user_in_once_the_failures_are_older_than_the_lockout(client, member):
    for _ in range(5):
        sign_in(client, "marketer", "wrong")
    LoginFailure.objects.update(
        failed_at=LoginFailure.objects.first().failed_at - timedelta(minutes=16)
    )
    assert sign_in(client, "marketer", PASSWORD).status_code == 302
    assert signed_in(client)


def test_it_forgets_a_users_failures_once_they_sign_in(client, member):
    for _ in range(4):
        sign_in(client, "marketer", "wrong")
    assert sign_in(client, "marketer", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        sign_in(client, "marketer", "wrong")
    assert sign_in(client, "marketer", PASSWORD).status_code == 302


def test_it_locks_out_the_admin_login_too(client, django_user_model):
    django_user_model.objects.create_superuser("admin", password=PASSWORD)
    path = reverse("admin:login")
    for _ in range(5):
        sign_in(client, "admin", "wrong", path=path)
    refused = sign_in(client, "admin", PASSWORD, path=path)
    assert refused.status_code == 200 and LOCKED in refused.content.decode()
    assert not signed_in(client)
