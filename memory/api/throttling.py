"""Rate limits per API key, counted in Django's cache (Redis when REDIS_URL is set)."""

import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from campaigns.models import ApiKey


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
        if cache.add(key, 1, timeout=window_s + 1):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # the window's key expired between add and incr
                cache.add(key, 1, timeout=window_s + 1)
                count = 1
        self._wait = (window + 1) * window_s - now
        return count <= settings.PRIMER_INGEST_RATE_LIMIT

    def wait(self) -> float:
        # DRF writes Retry-After with "%d"; round up so a client never retries too early.
        return math.ceil(self._wait)
