"""Start real Celery worker processes on Redis against the test database."""

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url_of_test_database() -> str:
    """Point a child process at the database this test run uses."""
    config = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
        return f"postgres://{auth}@{config['HOST']}:{config['PORT'] or 5432}/{config['NAME']}"
    return f"sqlite:///{config['NAME']}"


@dataclass
class Workers:
    """Worker processes sharing one private queue, so no stray worker steals the tasks."""

    redis_url: str
    queue: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, **env: str) -> subprocess.Popen:
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
                self.queue,
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "warning",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": database_url_of_test_database(),
                "REDIS_URL": self.redis_url,
                "PRIMER_TASK_QUEUE": self.queue,
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """Kill a worker at once, as a lost machine would: no chance to finish or ack."""
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
