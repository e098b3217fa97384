"""Fixtures for ingestion tests: posting JSON the way Segment's libraries do."""

import base64
import json

import pytest


@pytest.fixture
def basic_auth():
    """Return a function making an Authorization header with the key as Basic user name."""

    def header(raw_key: str) -> str:
        return "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()

    return header


@pytest.fixture
def write_auth(basic_auth, write_key) -> str:
    return basic_auth(write_key)


@pytest.fixture
def post_json(client):
    """POST a body (an object, or raw bytes) as JSON, with an optional Authorization header."""

    def post(path: str, body, *, auth: str | None = None, **headers):
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        if auth is not None:
            headers["HTTP_AUTHORIZATION"] = auth
        return client.post(path, data=data, content_type="application/json", **headers)

    return post


from tests.campaigns.strategy_support import strategy_catalogue  # noqa: F401, E402
from tests.memory.import_support import eager_tasks, media_root, run_on_commit  # noqa: E402, F401
