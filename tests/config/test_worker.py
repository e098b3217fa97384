"""A real Celery worker process on Redis runs a task against the test database."""

import pytest
from django.db import connection

from campaigns.tasks import health_check


@pytest.mark.worker
def test_it_runs_a_task_in_a_real_worker_on_redis(celery_workers, make_workspace):
    make_workspace("one")
    make_workspace("two")
    celery_workers.start()
    result = health_check.apply_async(queue=celery_workers.queue)
    assert result.get(timeout=60) == {"database": connection.vendor, "workspaces": 2}
