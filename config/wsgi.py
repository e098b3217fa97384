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
# Keep what is loaded now out of the cyclic garbage collector's scans: a full collection would
# otherwise walk every module object again, now and then in the middle of a request (about
# 8 µs an event on /v1/batch). With gunicorn --preload, the workers also share those pages.
gc.freeze()
