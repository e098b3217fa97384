"""Django's cache, for callers that must go on when it (Redis) does not answer.

Each helper catches the cache's connection errors, logs a warning (at most once a minute per
use, so an outage does not flood the log) and falls back to what the caller can do alone.
"""

import logging
import time

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger("primer.cache")

# What a cache backend raises when its server is gone: redis-py's errors, socket errors.
CACHE_ERRORS = (RedisError, OSError)
_WARN_EVERY_S = 60.0
_last_warned: dict[str, float] = {}


def cache_unavailable(use: str, error: Exception) -> None:
    """Log that the cache failed for `use` and what Primer does instead (rate limited)."""
    now = time.monotonic()
    if now - _last_warned.get(use, -_WARN_EVERY_S) >= _WARN_EVERY_S:
        _last_warned[use] = now
        logger.warning("Cache (Redis) unavailable for %s: %s: %s", use, type(error).__name__, error)


def cache_get_or_set(key: str, compute, *, timeout: int, use: str):
    """Return the cached value, else compute it (and cache it when the cache answers)."""
    try:
        return cache.get_or_set(key, compute, timeout=timeout)
    except CACHE_ERRORS as error:
        cache_unavailable(f"{use}; read from the database instead", error)
        return compute()
