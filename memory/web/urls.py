from django.urls import path

import config.customer_urls  # noqa: F401 (registers the external_id path converter)
from memory.web import privacy, views

urlpatterns = [
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<external_id:external_id>/", views.customer_detail, name="customer-detail"),
    # The id last, under its own prefix: a '/' in an id cannot be taken for a route's suffix.
    path(
        "privacy/export/<external_id:external_id>/",
        privacy.customer_export,
        name="customer-export",
    ),
    path(
        "privacy/delete/<external_id:external_id>/",
        privacy.customer_delete,
        name="customer-delete",
    ),
    path("privacy/suppressions/", privacy.suppressions, name="suppressions"),
    path("privacy/suppressions/add/", privacy.suppression_add, name="suppression-add"),
    path("privacy/suppressions/lift/", privacy.suppression_lift, name="suppression-lift"),
    path("memory/", views.memory_overview, name="memory-overview"),
    path("memory/recompute/", views.recompute_now, name="memory-recompute"),
    path(
        "memory/decisions/match/",
        views.decisions_match_now_view,
        name="memory-decisions-match",
    ),
    path("memory/runs/<int:run_id>/status/", views.run_status, name="memory-run-status"),
]
