"""The HTTP benches' server: gunicorn on a free port of 127.0.0.1, and a key's Basic header."""

import base64
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def basic_auth(raw_key: str) -> str:
    """Return the Authorization header Segment's libraries send: the key as the user name."""
    return "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()


@contextmanager
def gunicorn_serving(*, workers: int, env: dict | None = None):
    """Run gunicorn (preloaded, so the port opens once every worker is ready); yield its port."""
    port = free_port()
    environment = {
        **(env if env is not None else os.environ),
        "PRIMER_INGEST_RATE_LIMIT": "1000000",
        "PRIMER_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "--workers",
            str(workers),
            "--preload",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("gunicorn did not open its port within 30 s")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
