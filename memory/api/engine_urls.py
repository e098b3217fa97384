"""Routes of the memory endpoints, under /api/v1/."""

from django.urls import path

import config.customer_urls  # noqa: F401 (registers the external_id path converter)
from memory.api import engine, privacy

urlpatterns = [
    path(
        "customers/<external_id:external_id>/memory",
        engine.CustomerMemoryView.as_view(),
        name="api-customer-memory",
    ),
    path(
        "customers/<external_id:external_id>/score",
        engine.CustomerScoreView.as_view(),
        name="api-customer-score",
    ),
    path(
        "customers/<external_id:external_id>/next-best",
        engine.CustomerNextBestView.as_view(),
        name="api-customer-next-best",
    ),
    path(
        "customers/<external_id:external_id>/data",
        privacy.CustomerDataView.as_view(),
        name="api-customer-data",
    ),
    path("suppressions", privacy.SuppressionListView.as_view(), name="api-suppressions"),
    path(
        "suppressions/<external_id:external_id>",
        privacy.SuppressionView.as_view(),
        name="api-suppression",
    ),
    path("recompute", engine.RecomputeView.as_view(), name="api-recompute"),
    path("decisions/match", engine.DecisionsMatchView.as_view(), name="api-decisions-match"),
    path("recompute/<int:run_id>", engine.RecomputeDetailView.as_view(), name="api-recompute-run"),
    path("memory/export", engine.MemoryExportView.as_view(), name="api-memory-export"),
    path("memory/summary", engine.MemorySummaryView.as_view(), name="api-memory-summary"),
]
