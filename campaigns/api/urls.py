"""Prompt routes under /api/v1/ (no trailing slash, like the ingestion routes)."""

from django.urls import path

import config.customer_urls  # noqa: F401 (registers the external_id path converter)
from campaigns.api import config_views, next_message, preview, views

# The workspace is a singleton (no id in the path), so it is routed by hand.
workspace = config_views.WorkspaceViewSet.as_view({"get": "retrieve", "patch": "partial_update"})

urlpatterns = [
    path(
        "customers/<external_id:external_id>/prompt",
        views.CustomerPromptView.as_view(),
        name="api-customer-prompt",
    ),
    path(
        "customers/<external_id:external_id>/prompt/preview",
        views.CustomerPromptPreviewView.as_view(),
        name="api-customer-prompt-preview",
    ),
    path(
        "customers/<external_id:external_id>/drafts",
        next_message.CustomerDraftsView.as_view(),
        name="api-customer-drafts",
    ),
    path(
        "customers/<external_id:external_id>/drafts/save",
        next_message.CustomerDraftSaveView.as_view(),
        name="api-customer-draft-save",
    ),
    path("prompts/export", views.PromptExportView.as_view(), name="api-prompts-export"),
    path("drafts", views.MessageDraftsView.as_view(), name="api-message-drafts"),
    path("workspace", workspace, name="api-workspace"),
    path("effect-preview", preview.EffectPreviewView.as_view(), name="api-effect-preview"),
]
