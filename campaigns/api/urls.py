"""Prompt routes under /api/v1/ (no trailing slash, like the ingestion routes)."""

from django.urls import path

from campaigns.api import catalogue, views  # noqa: F401  (catalogue registers its ViewSets)
from campaigns.api.router import router

urlpatterns = [
    path(
        "customers/<str:external_id>/prompt",
        views.CustomerPromptView.as_view(),
        name="api-customer-prompt",
    ),
    path(
        "customers/<str:external_id>/prompt/preview",
        views.CustomerPromptPreviewView.as_view(),
        name="api-customer-prompt-preview",
    ),
    path("prompts/export", views.PromptExportView.as_view(), name="api-prompts-export"),
    path("drafts", views.MessageDraftsView.as_view(), name="api-message-drafts"),
    *router.urls,
]
