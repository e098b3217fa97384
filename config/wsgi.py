"""WSGI entry point for gunicorn and other servers."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Import the URLconf, and with it every view module, now: otherwise each worker pays for the
# imports (seconds) on its first request, in the middle of live traffic.
get_resolver().url_patterns  # noqa: B018 (the access loads the URLconf)
# Keep what is loaded now out of the cyclic collector's scans (docs/decisions/0004-...).
gc.freeze()
