"""Rate limits per API key, counted in Django's cache (Redis when REDIS_URL is set).

When the cache does not answer, each process counts on its own (a local fixed window), so
ingestion goes on; the limit then holds per process instead of across all of them.
"""

import math
import threading
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from campaigns.models import ApiKey
from memory.cache_fallback import CACHE_ERRORS, cache_unavailable

_local_lock = threading.Lock()
_local_counts: dict[str, int] = {}


def _local_count(key: str, window: int) -> int:
    """Count a request in this process's window `key`, forgetting windows that have passed."""
    with _local_lock:
        if key not in _local_counts:
            for stale in [k for k in _local_counts if not k.endswith(f":{window}")]:
                del _local_counts[stale]
        _local_counts[key] = _local_counts.get(key, 0) + 1
        return _local_counts[key]


class ApiKeyRateThrottle(BaseThrottle):
    """Allow PRIMER_INGEST_RATE_LIMIT requests per key per PRIMER_INGEST_RATE_WINDOW_S seconds.

    A fixed window counted with the cache's atomic add/incr: one round trip per request, and
    every process behind the same Redis shares the count. Session users count by user id.
    """

    def allow_request(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif getattr(request.user, "is_authenticated", False) and request.user.pk:
            ident = f"user:{request.user.pk}"
        else:
            return True  # unauthenticated requests are refused before they get here
        window_s = settings.PRIMER_INGEST_RATE_WINDOW_S
        now = time.time()
        window = int(now // window_s)
        key = f"throttle:api:{ident}:{window}"
        try:
            count = self._shared_count(key, window_s)
        except CACHE_ERRORS as error:
            cache_unavailable("the API rate limit; counting per process instead", error)
            count = _local_count(key, window)
        self._wait = (window + 1) * window_s - now
        return count <= settings.PRIMER_INGEST_RATE_LIMIT

    @staticmethod
    def _shared_count(key: str, window_s: int) -> int:
        if cache.add(key, 1, timeout=window_s + 1):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # the window's key expired between add and incr
            cache.add(key, 1, timeout=window_s + 1)
            return 1

    def wait(self) -> float:
        # DRF writes Retry-After with "%d"; round up so a client never retries too early.
        return math.ceil(self._wait)
