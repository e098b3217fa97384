from django.urls import path

from campaigns.web import audit, views
from campaigns.web import prompts as prompt_views

urlpatterns = [
    path("", views.home, name="home"),
    path("workspaces/switch/", views.workspace_switch, name="workspace-switch"),
    path("audit/", audit.audit_timeline, name="audit"),
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
    path(
        "prompts/webhooks/<int:webhook_id>/action/",
        prompt_views.webhook_action,
        name="webhook-action",
    ),
]
