from django.urls import path

import config.customer_urls  # noqa: F401 (registers the external_id path converter)
from memory.web import views

urlpatterns = [
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<external_id:external_id>/", views.customer_detail, name="customer-detail"),
    path("memory/", views.memory_overview, name="memory-overview"),
    path("memory/recompute/", views.recompute_now, name="memory-recompute"),
    path("memory/runs/<int:run_id>/status/", views.run_status, name="memory-run-status"),
]
