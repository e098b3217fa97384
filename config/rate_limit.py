"""Fixed-window rate limits counted in Django's cache (Redis when REDIS_URL is set).

When the cache does not answer, each process counts on its own (a local fixed window), so the
request goes on; the limit then holds per process instead of across all of them. Used by the
API's throttles (per key, or per user for a session) and by pages (per user).
"""

import logging
import math
import threading
import time
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from campaigns.models import ApiKey

logger = logging.getLogger("primer.cache")

CACHE_ERRORS = (RedisError, OSError)
_WARN_EVERY_S = 60.0
_last_warned = [-_WARN_EVERY_S]
_local_lock = threading.Lock()
_local_counts: dict[str, int] = {}


class Verdict(NamedTuple):
    allowed: bool
    wait_s: int  # whole seconds until the window ends (rounded up: never retry too early)


def rate_check(*, scope: str, ident: str, limit: int, window_s: int) -> Verdict:
    """Count one request of `ident` under `scope` and tell whether it is within the limit."""
    now = time.time()
    window = int(now // window_s)
    key = f"throttle:{scope}:{ident}:{window}"
    try:
        count = _shared_count(key, window_s)
    except CACHE_ERRORS as error:
        if now - _last_warned[0] >= _WARN_EVERY_S:
            _last_warned[0] = now
            logger.warning("Cache (Redis) unavailable for rate limits; per process: %s", error)
        count = _local_count(key, window)
    return Verdict(count <= limit, math.ceil((window + 1) * window_s - now))


def _shared_count(key: str, window_s: int) -> int:
    if cache.add(key, 1, timeout=window_s + 1):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window's key expired between add and incr
        cache.add(key, 1, timeout=window_s + 1)
        return 1


def _local_count(key: str, window: int) -> int:
    """Count a request in this process's window `key`, forgetting windows that have passed."""
    with _local_lock:
        if key not in _local_counts:
            for stale in [k for k in _local_counts if not k.endswith(f":{window}")]:
                del _local_counts[stale]
        _local_counts[key] = _local_counts.get(key, 0) + 1
        return _local_counts[key]


def requester_ident(request) -> str | None:
    """Return who a request counts against: its API key, else its signed-in user."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return f"key:{auth.pk}"
    user = getattr(request, "user", None)
    if getattr(user, "is_authenticated", False) and user.pk:
        return f"user:{user.pk}"
    return None


class ScopedRateThrottle(BaseThrottle):
    """Allow settings[limit_setting] requests per key (or user) per settings[window_setting] s.

    One round trip per request (the cache's atomic add/incr), shared by every process behind
    the same Redis. `what` names the requests in the 429's message.
    """

    scope = "api"
    limit_setting = "PRIMER_INGEST_RATE_LIMIT"
    window_setting = "PRIMER_INGEST_RATE_WINDOW_S"
    what = "requests"

    def allow_request(self, request, view) -> bool:
        ident = requester_ident(request)
        if ident is None:
            return True  # unauthenticated requests are refused before they get here
        verdict = rate_check(
            scope=self.scope, ident=ident, limit=self.limit, window_s=self.window_s
        )
        self._wait = verdict.wait_s
        return verdict.allowed

    @property
    def limit(self) -> int:
        return getattr(settings, self.limit_setting)

    @property
    def window_s(self) -> int:
        return getattr(settings, self.window_setting)

    def wait(self) -> float:
        return self._wait

    def message(self) -> str:
        return (
            f"Too many {self.what}: at most {self.limit} per {self.window_s} s for each key "
            "or user."
        )


class ClearThrottleMessage:
    """A view mixin: a 429 names the limit that was passed (DRF adds when to try again)."""

    def check_throttles(self, request):
        denied = [t for t in self.get_throttles() if not t.allow_request(request, self)]
        if denied:
            worst = max(denied, key=lambda throttle: throttle.wait() or 0)
            message = getattr(worst, "message", None)
            raise Throttled(worst.wait(), detail=message() if callable(message) else None)


class LlmRateThrottle(ScopedRateThrottle):
    """Endpoints that call the LLM (preview, drafts, label suggestions): each call costs money
    and a worker's time, so a key or user gets PRIMER_LLM_RATE_LIMIT per window."""

    scope = "llm"
    limit_setting = "PRIMER_LLM_RATE_LIMIT"
    window_setting = "PRIMER_LLM_RATE_WINDOW_S"
    what = "LLM requests"


class Refusal(NamedTuple):
    message: str
    retry_after_s: int


def llm_rate_refusal(request) -> Refusal | None:
    """Count a page's LLM request against its user (the API's count); say why past the limit."""
    throttle = LlmRateThrottle()
    if throttle.allow_request(request, None):
        return None
    return Refusal(f"{throttle.message()} Try again in {throttle.wait()} s.", throttle.wait())
