"""Prompt routes under /api/v1/ (no trailing slash, like the ingestion routes)."""

from django.urls import path

from campaigns.api import config_views, preview, views

# The workspace is a singleton (no id in the path), so it is routed by hand.
workspace = config_views.WorkspaceViewSet.as_view({"get": "retrieve", "patch": "partial_update"})

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
    path("workspace", workspace, name="api-workspace"),
    path("effect-preview", preview.EffectPreviewView.as_view(), name="api-effect-preview"),
]
