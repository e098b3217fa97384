"""Primer's settings: the only module that reads the environment.

Defaults run on a laptop with nothing installed (SQLite, Celery tasks in-process).
DATABASE_URL switches to PostgreSQL, REDIS_URL to Redis-backed Celery and cache,
and PRIMER_ENV=production hardens everything else. See README.md for the full list.
"""

import importlib.util
import os
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    SQLITE_OPTIONS,
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

PRIMER_ENV = env_str("PRIMER_ENV", "development")
if PRIMER_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(
        f"PRIMER_ENV={PRIMER_ENV!r} is not one of development, test, production."
    )
PRODUCTION = PRIMER_ENV == "production"

DEBUG = env_bool("PRIMER_DEBUG", not PRODUCTION)
if PRODUCTION:
    SECRET_KEY = env_str("PRIMER_SECRET_KEY", required=True)
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("PRIMER_SECRET_KEY must be at least 50 characters long.")
    ALLOWED_HOSTS = env_list("PRIMER_ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("PRIMER_ALLOWED_HOSTS must list the host names served.")
else:
    SECRET_KEY = env_str(
        "PRIMER_SECRET_KEY", "insecure-development-key-do-not-use-in-production-0123456789"
    )
    ALLOWED_HOSTS = env_list("PRIMER_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

CSRF_TRUSTED_ORIGINS = env_list("PRIMER_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.admin_site.PrimerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "campaigns",
    "memory",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "campaigns.tenancy.middleware.CurrentWorkspaceMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "campaigns.tenancy.context_processors.workspaces",
            ],
            "libraries": {"customer_urls": "config.customer_urls"},
        },
    },
]

# Database: SQLite file by default; DATABASE_URL=postgres://... for PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "primer.sqlite3",
            # A file, not memory, so a worker process started by a test sees the same rows;
            # one per test run, so runs side by side do not share it.
            "TEST": {"NAME": BASE_DIR / f"primer-test-{os.getpid()}.sqlite3"},
            "OPTIONS": SQLITE_OPTIONS,
        }
    }
if PRIMER_ENV == "test":
    # Live-server threads would otherwise keep connections open past the test database's drop.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASE_VENDOR = "postgresql" if "postgresql" in DATABASES["default"]["ENGINE"] else "sqlite"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker and results, and Django's cache. Without it, tasks run in-process.
REDIS_URL = redis_url("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("PRIMER_TASK_TIME_LIMIT", 1800, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 5
# With acks_late, an unacknowledged task is redelivered after this; keep it above the time limit.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = env_str("PRIMER_TASK_QUEUE", "celery")
# Recompute shards: customers per Celery task (coarse: each task costs a few ms of overhead).
PRIMER_RECOMPUTE_CUSTOMERS_PER_SHARD = env_int(
    "PRIMER_RECOMPUTE_CUSTOMERS_PER_SHARD", 20_000, minimum=1
)
# Each customer's best messages the recompute stores (pages, the API and exploration read them).
PRIMER_NEXT_BEST_STORED = env_int("PRIMER_NEXT_BEST_STORED", 20, minimum=1)
# The live campaigns' messages stored for every customer besides their best (at most this many).
PRIMER_NEXT_BEST_CAMPAIGN_MESSAGES = env_int("PRIMER_NEXT_BEST_CAMPAIGN_MESSAGES", 40, minimum=0)
# A recompute queued this long without a worker taking it, or running this long without
# progress (a shard stored), is marked failed as stale instead of shown queued or running.
PRIMER_RECOMPUTE_QUEUED_TIMEOUT_S = env_int("PRIMER_RECOMPUTE_QUEUED_TIMEOUT_S", 3600, minimum=1)
PRIMER_RECOMPUTE_STALLED_S = env_int(
    "PRIMER_RECOMPUTE_STALLED_S", CELERY_TASK_TIME_LIMIT + 600, minimum=1
)
# POST /api/v1/recompute: requests per API key (or user) per window, answered 429 past it.
PRIMER_RECOMPUTE_RATE_LIMIT = env_int("PRIMER_RECOMPUTE_RATE_LIMIT", 6, minimum=1)
PRIMER_RECOMPUTE_RATE_WINDOW_S = env_int("PRIMER_RECOMPUTE_RATE_WINDOW_S", 60, minimum=1)
CELERY_BEAT_SCHEDULE = {
    # Besides the debounced recompute after ingestion, a full one each night refreshes all.
    "recompute-all-workspaces-nightly": {
        "task": "memory.recompute_all_workspaces",
        "schedule": crontab(hour=env_int("PRIMER_NIGHTLY_RECOMPUTE_HOUR", 3, minimum=0), minute=0),
    },
    # Debounced recomputes recorded in the database while Redis did not answer.
    "recompute-outbox-drain": {"task": "memory.recompute_outbox_drain", "schedule": 60.0},
    # Served decisions matched to their sends, and their outcomes resolved (docs/decisions/0601).
    "decisions-match": {"task": "memory.decisions_match_all", "schedule": 300.0},
    # Runs never picked up, or whose process died, marked failed instead of "running" forever.
    "recompute-expire-stale": {"task": "memory.recompute_expire_stale", "schedule": 300.0},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if PRIMER_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Sign-in lockout (login page and admin): this many failures for one user name, or from one
# address, within the lockout time lock sign-in until the oldest of them is that old.
PRIMER_LOGIN_MAX_FAILURES = env_int("PRIMER_LOGIN_MAX_FAILURES", 5, minimum=1)
PRIMER_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int(
    "PRIMER_LOGIN_MAX_FAILURES_PER_ADDRESS", 20, minimum=1
)
PRIMER_LOGIN_LOCKOUT_S = env_int("PRIMER_LOGIN_LOCKOUT_S", 900, minimum=1)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Plotly's own bundle, served from the pinned package: pages never reach a CDN.
PLOTLY_JS_DIR = Path(importlib.util.find_spec("plotly").origin).parent / "package_data"
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", PLOTLY_JS_DIR)]
STATIC_ROOT = Path(env_str("PRIMER_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
if PRODUCTION:
    # Static files from the app itself, compressed and cached: production needs no web server.
    MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")
    # Hashed names let browsers cache for a year; collectstatic builds them (README, Production).
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
PRIMER_CSP_RELAXED_PATHS = ("/api/redoc/",)

# Uploaded files (event imports): web and workers must share this folder.
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("PRIMER_MEDIA_ROOT", str(BASE_DIR / "media")))

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "campaigns.tenancy.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Primer API",
    "DESCRIPTION": "Events in, per-customer memory and personalized prompts out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Every operation also documents the 400/401/403/404/429 answers it can give.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "memory.api.schema.document_common_answers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "EventImportStatusEnum": "memory.models.EventImport.Status",
        "EventImportFormatEnum": "memory.models.EventImport.Format",
        "EventImportFormatOrAutoEnum": "memory.imports.FORMATS",
        # The audit's and the overrides' "action" are different choice sets.
        "OverrideActionEnum": "campaigns.models.Override.Action",
        "GuardrailKindEnum": "campaigns.models.Guardrail.Kind",
        "GuardrailPeriodEnum": "campaigns.models.Guardrail.Period",
    },
}

# The LLM, reached through the openai client at any OpenAI-compatible base URL.
PRIMER_LLM_BASE_URL = env_str("PRIMER_LLM_BASE_URL")
PRIMER_LLM_API_KEY = env_str("PRIMER_LLM_API_KEY", "not-needed")
PRIMER_LLM_MODEL = env_str("PRIMER_LLM_MODEL", "gpt-4o-mini")
PRIMER_LLM_TIMEOUT_S = env_float("PRIMER_LLM_TIMEOUT_S", 30.0, minimum=0.1)

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("PRIMER_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("PRIMER_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    if env_bool("PRIMER_BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("PRIMER_LOG_LEVEL", "INFO")},
}

# Ingestion: Segment-compatible API limits and policies (see README, "Sending events").
INSTALLED_APPS += ["drf_spectacular_sidecar"]  # Swagger UI and Redoc from local static files
SPECTACULAR_SETTINGS |= {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Requests per API key per window, answered 429 with Retry-After past it.
PRIMER_INGEST_RATE_LIMIT = env_int("PRIMER_INGEST_RATE_LIMIT", 1000, minimum=1)
PRIMER_INGEST_RATE_WINDOW_S = env_int("PRIMER_INGEST_RATE_WINDOW_S", 10, minimum=1)
# Event times before January 1st of this year, or this many hours after receipt, are rejected.
PRIMER_INGEST_EARLIEST_YEAR = env_int("PRIMER_INGEST_EARLIEST_YEAR", 2000, minimum=1970)
PRIMER_INGEST_MAX_FUTURE_H = env_int("PRIMER_INGEST_MAX_FUTURE_H", 24, minimum=0)
# Label sets and labels that send events may create per workspace; past them the event is
# rejected with the reason (labels created on the pages or by the API are not capped).
PRIMER_MAX_LABEL_SETS = env_int("PRIMER_MAX_LABEL_SETS", 50, minimum=1)
PRIMER_MAX_LABELS = env_int("PRIMER_MAX_LABELS", 2000, minimum=1)

# Calls that ask the LLM (preview, drafts, label suggestions) per API key or user per window,
# pages and API counted together; past it 429 with the reason.
PRIMER_LLM_RATE_LIMIT = env_int("PRIMER_LLM_RATE_LIMIT", 20, minimum=1)
PRIMER_LLM_RATE_WINDOW_S = env_int("PRIMER_LLM_RATE_WINDOW_S", 60, minimum=1)

# Prompts: webhooks that receive changed prompts (campaigns/webhooks, docs/prompts.md).
PRIMER_WEBHOOK_TIMEOUT_S = env_float("PRIMER_WEBHOOK_TIMEOUT_S", 10.0, minimum=0.1)
# The first retry waits this long, each next one twice as long (capped at an hour).
PRIMER_WEBHOOK_BACKOFF_S = env_float("PRIMER_WEBHOOK_BACKOFF_S", 30.0, minimum=0.01)
# Outside development and tests, refuse URLs resolving to private or local addresses (SSRF).
PRIMER_WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("PRIMER_WEBHOOK_ALLOW_PRIVATE_URLS", not PRODUCTION)

# Imports from the browser and the API (memory/imports.py): the largest upload accepted, how
# many bad lines each import keeps for its report (all are counted), and after how long without
# progress a running import counts as lost (its worker died) and may be run again.
PRIMER_IMPORT_MAX_MB = env_int("PRIMER_IMPORT_MAX_MB", 200, minimum=1)
PRIMER_IMPORT_ERRORS_KEPT = env_int("PRIMER_IMPORT_ERRORS_KEPT", 1000, minimum=1)
PRIMER_IMPORT_STALLED_S = env_int("PRIMER_IMPORT_STALLED_S", 300, minimum=0)
# A campaign count a page asked for and no worker made within this is asked for again.
PRIMER_TALLY_RETRY_S = env_int("PRIMER_TALLY_RETRY_S", 600, minimum=1)
PRIMER_IMPORT_CHUNK_SIZE = env_int("PRIMER_IMPORT_CHUNK_SIZE", 5_000, minimum=1)
