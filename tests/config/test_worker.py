"""A real Celery worker process on Redis runs a task against the test database."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from campaigns.tasks import health_check

ROOT = Path(__file__).resolve().parents[2]


def database_url_of_test_database() -> str:
    """Point a child process at the database this test run uses."""
    config = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
        return f"postgres://{auth}@{config['HOST']}:{config['PORT'] or 5432}/{config['NAME']}"
    return f"sqlite:///{config['NAME']}"


@pytest.fixture
def celery_worker(redis_url, transactional_db):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": database_url_of_test_database(), "REDIS_URL": redis_url}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queue,
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield queue
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.worker
def test_it_runs_a_task_in_a_real_worker_on_redis(celery_worker, make_workspace):
    make_workspace("one")
    make_workspace("two")
    result = health_check.apply_async(queue=celery_worker)
    assert result.get(timeout=60) == {"database": connection.vendor, "workspaces": 2}
