from django.urls import path

import config.customer_urls  # noqa: F401 (registers the external_id path converter)
from campaigns.web import audit, views
from campaigns.web import campaigns as campaign_views
from campaigns.web import labels as label_views
from campaigns.web import messages as message_views
from campaigns.web import next_message as next_message_views
from campaigns.web import prompts as prompt_views
from campaigns.web import settings as settings_views
from campaigns.web import strategy as strategy_views

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
        "campaigns/<slug:slug>/uplift/",
        campaign_views.campaign_uplift_view,
        name="campaign-uplift",
    ),
    path(
        "campaigns/<slug:slug>/uplift/counted/",
        campaign_views.campaign_uplift_counted,
        name="campaign-uplift-counted",
    ),
    path(
        "campaigns/<slug:slug>/archive/",
        campaign_views.campaign_archive_view,
        name="campaign-archive",
    ),
    # Guardrails and overrides (docs/decisions/0260).
    path("guardrails/", strategy_views.guardrail_list, name="guardrails"),
    path("guardrails/new/", strategy_views.guardrail_new, name="guardrail-new"),
    path("guardrails/<int:pk>/", strategy_views.guardrail_edit, name="guardrail"),
    path("guardrails/<int:pk>/active/", strategy_views.guardrail_active, name="guardrail-active"),
    path(
        "guardrails/preview-effect/",
        strategy_views.guardrail_preview_effect,
        name="guardrail-new-preview",
    ),
    path(
        "guardrails/<int:pk>/preview-effect/",
        strategy_views.guardrail_preview_effect,
        name="guardrail-preview",
    ),
    path("overrides/", strategy_views.override_list, name="overrides"),
    path("overrides/new/", strategy_views.override_new, name="override-new"),
    path("overrides/<int:pk>/", strategy_views.override_edit, name="override"),
    path("overrides/<int:pk>/active/", strategy_views.override_active, name="override-active"),
    path(
        "overrides/preview-effect/",
        strategy_views.override_preview_effect,
        name="override-new-preview",
    ),
    path(
        "overrides/<int:pk>/preview-effect/",
        strategy_views.override_preview_effect,
        name="override-preview",
    ),
    # Workspace settings, members and API keys (editors change settings; owners members and keys).
    path("settings/", settings_views.workspace_settings, name="workspace-settings"),
    path("settings/members/", settings_views.members, name="members"),
    path("settings/keys/", settings_views.api_keys, name="api-keys"),
    # Catalogue: label sets and labels, messages.
    path("catalogue/labels/", label_views.labels, name="catalogue-labels"),
    path("catalogue/labels/new/", label_views.label_new, name="catalogue-label-new"),
    path("catalogue/labels/<int:pk>/", label_views.label_edit, name="catalogue-label"),
    path(
        "catalogue/labels/<int:pk>/preview-effect/",
        label_views.label_preview_effect,
        name="catalogue-label-preview",
    ),
    path(
        "catalogue/labels/<int:pk>/active/", label_views.label_active, name="catalogue-label-active"
    ),
    path("catalogue/label-sets/new/", label_views.label_set_new, name="catalogue-label-set-new"),
    path(
        "catalogue/label-sets/<slug:slug>/", label_views.label_set_edit, name="catalogue-label-set"
    ),
    path(
        "catalogue/label-sets/<slug:slug>/active/",
        label_views.label_set_active,
        name="catalogue-label-set-active",
    ),
    path("catalogue/messages/", message_views.message_list, name="catalogue-messages"),
    path("catalogue/messages/new/", message_views.message_new, name="catalogue-message-new"),
    path(
        "catalogue/messages/import/",
        message_views.message_import,
        name="catalogue-messages-import",
    ),
    path(
        "catalogue/messages/similar/",
        message_views.message_similar,
        name="catalogue-messages-similar",
    ),
    path(
        "catalogue/messages/suggest-labels/",
        message_views.message_suggest_labels,
        name="catalogue-messages-suggest-labels",
    ),
    path("catalogue/messages/<int:pk>/", message_views.message_edit, name="catalogue-message"),
    path(
        "catalogue/messages/<int:pk>/active/",
        message_views.message_active,
        name="catalogue-message-active",
    ),
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
        "prompts/customers/<external_id:external_id>/",
        prompt_views.customer_prompt,
        name="customer-prompt",
    ),
    path(
        # The id last, as in every customer route: it may hold slashes (config/customer_urls).
        "prompts/next-message/<external_id:external_id>/",
        next_message_views.customer_next_message,
        name="customer-next-message",
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
