import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_int, redis_url

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("PRIMER_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("postgres://127.0.0.1:5432/", "names no database"),
        ("postgres://127.0.0.1:notaport/db", "port that is not a number"),
        ("sqlite://", "names no file"),
    ],
)
def test_it_explains_a_bad_database_url(url, reason):
    with pytest.raises(ImproperlyConfigured, match=reason):
        database_from_url(url)


def test_it_stops_the_command_line_on_a_bad_database_url():
    result = run_manage("check", DATABASE_URL="mysql://u@h/db")
    assert result.returncode != 0
    assert "DATABASE_URL='mysql://u@h/db' has an unsupported scheme 'mysql'" in result.stderr


def test_it_reads_a_postgres_url():
    config = database_from_url("postgres://primer:s3cret@db.internal:6432/primer")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"], config["NAME"]) == (
        "primer",
        "s3cret",
        "db.internal",
        "6432",
        "primer",
    )


def test_it_rejects_values_that_are_not_what_a_setting_needs(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG='maybe' is not a boolean"):
        env_bool("FLAG")
    monkeypatch.setenv("COUNT", "ten")
    with pytest.raises(ImproperlyConfigured, match="COUNT='ten' is not a whole number"):
        env_int("COUNT", 1)
    monkeypatch.setenv("BROKER", "amqp://guest@localhost")
    with pytest.raises(ImproperlyConfigured, match="not a redis://"):
        redis_url("BROKER")


def test_it_passes_the_deployment_checklist_in_production():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        PRIMER_ENV="production",
        PRIMER_SECRET_KEY=secrets.token_urlsafe(50),
        PRIMER_ALLOWED_HOSTS="primer.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_production_without_a_secret_key():
    result = run_manage("check", PRIMER_ENV="production", PRIMER_ALLOWED_HOSTS="primer.example.com")
    assert result.returncode != 0
    assert "PRIMER_SECRET_KEY must be set" in result.stderr


PRODUCTION_STATIC_CHECK = """
import django
from django.templatetags.static import static
from django.test import Client
django.setup()
client = Client(HTTP_HOST="primer.example.com")
page = client.get("/login/", secure=True)
style = static("css/primer.css")
plotly = static("vendor/plotly/plotly.min.js")
print(page.status_code, page.headers["Content-Security-Policy"].split(";")[0])
for url in (style, plotly):
    answer = client.get(url, secure=True)
    print(url, answer.status_code, answer.headers.get("Cache-Control", ""))
"""


def test_it_serves_hashed_static_files_itself_in_production(tmp_path):
    env = {
        "PRIMER_ENV": "production",
        "PRIMER_SECRET_KEY": secrets.token_urlsafe(50),
        "PRIMER_ALLOWED_HOSTS": "primer.example.com",
        "PRIMER_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    collected = run_manage("collectstatic", "--noinput", **env)
    assert collected.returncode == 0, collected.stderr
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PRIMER_", "DATABASE_"))}
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_STATIC_CHECK],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    login, style, plotly = result.stdout.splitlines()
    assert login == "200 default-src 'self'"
    # Hashed names (e.g. primer.4f1c….css), served by the app and cached for a year.
    assert (
        style.startswith("/static/css/primer.")
        and " 200 " in style
        and "max-age=315360000" in style
    )
    assert " 200 " in plotly
