"""The API's rate limits per key (or session user), counted as config/rate_limit.py says."""

from config.rate_limit import ScopedRateThrottle


class ApiKeyRateThrottle(ScopedRateThrottle):
    """Ingestion and the other API calls: PRIMER_INGEST_RATE_LIMIT per window."""

    scope = "api"
    limit_setting = "PRIMER_INGEST_RATE_LIMIT"
    window_setting = "PRIMER_INGEST_RATE_WINDOW_S"
    what = "requests"


class RecomputeRateThrottle(ScopedRateThrottle):
    """POST /api/v1/recompute: a few per minute, so a client cannot queue a storm."""

    scope = "recompute"
    limit_setting = "PRIMER_RECOMPUTE_RATE_LIMIT"
    window_setting = "PRIMER_RECOMPUTE_RATE_WINDOW_S"
    what = "recompute requests"


class MatchingRateThrottle(ScopedRateThrottle):
    """POST /api/v1/decisions/match: as many as recomputes (the same setting), counted apart."""

    scope = "decisions-match"
    limit_setting = "PRIMER_RECOMPUTE_RATE_LIMIT"
    window_setting = "PRIMER_RECOMPUTE_RATE_WINDOW_S"
    what = "matching requests"
