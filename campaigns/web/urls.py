from django.urls import path

from campaigns.web import audit, views
from campaigns.web import campaigns as campaign_views
from campaigns.web import prompts as prompt_views
from campaigns.web import settings as settings_views

urlpatterns = [
    path("", views.home, name="home"),
    path("workspaces/switch/", views.workspace_switch, name="workspace-switch"),
    path("audit/", audit.audit_timeline, name="audit"),
    # Campaigns, and the live count of an audience being edited.
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_views.campaign_new, name="campaign-new"),
    path("campaigns/audience-count/", campaign_views.audience_count, name="audience-count"),
    path("campaigns/<slug:slug>/", campaign_views.campaign_detail, name="campaign"),
    path("campaigns/<slug:slug>/edit/", campaign_views.campaign_edit, name="campaign-edit"),
    path(
        "campaigns/<slug:slug>/archive/",
        campaign_views.campaign_archive_view,
        name="campaign-archive",
    ),
    # Workspace settings, members and API keys (owners change them).
    path("settings/", settings_views.workspace_settings, name="workspace-settings"),
    path("settings/members/", settings_views.members, name="members"),
    path("settings/keys/", settings_views.api_keys, name="api-keys"),
    # Prompts: templates, customers' prompts and the LLM preview, drafts, webhooks.
    path("prompts/templates/", prompt_views.prompt_templates, name="prompt-templates"),
    path("prompts/new-template/", prompt_views.prompt_template_new, name="prompt-template-new"),
    path("prompts/settings/", prompt_views.prompt_settings, name="prompt-settings"),
    path("prompts/templates/<slug:slug>/", prompt_views.prompt_template, name="prompt-template"),
    path(
        "prompts/templates/<slug:slug>/render/",
        prompt_views.prompt_template_render,
        name="prompt-template-render",
    ),
    path(
        "prompts/templates/<slug:slug>/revert/<int:number>/",
        prompt_views.prompt_template_revert_view,
        name="prompt-template-revert",
    ),
    path("prompts/customers/", prompt_views.prompt_customers, name="prompt-customers"),
    path(
        "prompts/customers/<str:external_id>/",
        prompt_views.customer_prompt,
        name="customer-prompt",
    ),
    path("prompts/drafts/", prompt_views.message_drafts, name="message-drafts"),
    path("prompts/webhooks/", prompt_views.webhooks, name="webhooks"),
    path("prompts/webhooks/<int:webhook_id>/", prompt_views.webhook, name="webhook"),
    path("prompts/webhooks/<int:webhook_id>/edit/", prompt_views.webhook_edit, name="webhook-edit"),
    path(
        "prompts/webhooks/<int:webhook_id>/action/",
        prompt_views.webhook_action,
        name="webhook-action",
    ),
]
