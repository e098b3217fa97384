"""Shared fixtures: workspaces, users and keys, and the real services when configured."""

import os
import shutil

import pytest
from django.conf import settings

from campaigns.models import Membership
from campaigns.tenancy.services import (
    api_key_create,
    membership_grant,
    user_ensure,
    workspace_create,
)

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip when a real service is missing on a laptop; fail loudly in CI, where it must exist."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@pytest.fixture
def redis_url():
    require(bool(settings.REDIS_URL), "REDIS_URL is not set (real Celery worker tests need Redis)")
    return settings.REDIS_URL


@pytest.fixture
def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "Debian's chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture
def make_workspace(db):
    created = iter(range(1, 10_000))

    def make(slug: str | None = None, **kwargs):
        return workspace_create(slug=slug or f"ws-{next(created)}", **kwargs)

    return make


@pytest.fixture
def workspace(make_workspace):
    return make_workspace("acme", name="Acme")


@pytest.fixture
def other_workspace(make_workspace):
    return make_workspace("globex", name="Globex")


@pytest.fixture
def make_user(db):
    def make(username: str, *, workspace=None, role: str = Membership.Role.EDITOR, **kwargs):
        user = user_ensure(username=username, password="correct horse battery", **kwargs)
        if workspace is not None:
            membership_grant(workspace=workspace, user=user, role=role)
        return user

    return make


@pytest.fixture
def member(make_user, workspace):
    return make_user("marketer", workspace=workspace)


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def write_key(workspace):
    _, raw_key = api_key_create(workspace=workspace, scopes=["write"], name="writer")
    return raw_key


@pytest.fixture
def read_key(workspace):
    _, raw_key = api_key_create(workspace=workspace, scopes=["read"], name="reader")
    return raw_key


@pytest.fixture
def fresh_rate_counts(settings):
    """Forget earlier runs' rate counts: ids start again from 1 in each fresh test database."""
    from django.core.cache import cache

    if settings.REDIS_URL:
        redis = cache._cache.get_client(None, write=True)
        for name in redis.scan_iter(match="*throttle:*"):
            redis.delete(name)
    else:
        cache.clear()


@pytest.fixture
def celery_workers(redis_url, transactional_db, settings):
    """Real worker processes on a private queue; tasks sent from the test go there too."""
    from config.celery import app
    from tests.workers import Workers

    workers = Workers(redis_url=redis_url)
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = workers.queue
    yield workers
    app.conf.task_default_queue = previous
    workers.stop_all()


@pytest.fixture
def closed_port_broker(monkeypatch):
    """Point this process's task broker at a port nothing listens on (Redis itself stays up)."""
    from celery import current_app

    connect = current_app.connection_for_write
    monkeypatch.setattr(
        current_app, "connection_for_write", lambda: connect(url="redis://127.0.0.1:1/6")
    )
