"""Routes of the memory endpoints, under /api/v1/."""

from django.urls import path

from memory.api import engine

urlpatterns = [
    path(
        "customers/<str:external_id>/memory",
        engine.CustomerMemoryView.as_view(),
        name="api-customer-memory",
    ),
    path(
        "customers/<str:external_id>/score",
        engine.CustomerScoreView.as_view(),
        name="api-customer-score",
    ),
    path(
        "customers/<str:external_id>/next-best",
        engine.CustomerNextBestView.as_view(),
        name="api-customer-next-best",
    ),
    path("recompute", engine.RecomputeView.as_view(), name="api-recompute"),
    path("recompute/<int:run_id>", engine.RecomputeDetailView.as_view(), name="api-recompute-run"),
    path("memory/export", engine.MemoryExportView.as_view(), name="api-memory-export"),
    path("memory/summary", engine.MemorySummaryView.as_view(), name="api-memory-summary"),
]
