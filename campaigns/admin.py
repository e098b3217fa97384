"""Admin for configuration models; only superusers enter it (config/admin_site.py)."""

from django.contrib import admin

from campaigns.models import (
    ApiKey,
    Campaign,
    Label,
    LabelSet,
    Membership,
    Message,
    PromptSettings,
    PromptTemplate,
    PromptTemplateVersion,
    Webhook,
    WebhookDelivery,
    Workspace,
)
from campaigns.tenancy.admin import WorkspaceScopedAdmin


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "goal_event", "send_event", "attribution_window_h"]
    search_fields = ["slug", "name"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not request.user.is_superuser:
            queryset = queryset.filter(memberships__user=request.user)
        return queryset


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ["user", "workspace", "role"]
    list_filter = ["role", "workspace"]


@admin.register(ApiKey)
class ApiKeyAdmin(WorkspaceScopedAdmin):
    list_display = [
        "prefix",
        "name",
        "workspace",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]
    list_filter = ["workspace"]

    def has_add_permission(self, request):
        # A key's secret is shown once, by `manage.py create_api_key` or the API; not here.
        return False


@admin.register(LabelSet)
class LabelSetAdmin(WorkspaceScopedAdmin):
    list_display = ["slug", "name", "workspace"]
    list_filter = ["workspace"]


@admin.register(Label)
class LabelAdmin(WorkspaceScopedAdmin):
    list_display = ["slug", "name", "label_set", "boost", "active", "workspace"]
    list_filter = ["workspace", "active"]
    search_fields = ["slug", "name"]


@admin.register(Message)
class MessageAdmin(WorkspaceScopedAdmin):
    list_display = ["key", "channel", "subject", "active", "workspace"]
    list_filter = ["workspace", "active", "channel"]
    search_fields = ["key", "subject", "body"]
    filter_horizontal = ["labels"]


class PromptTemplateVersionInline(admin.TabularInline):
    model = PromptTemplateVersion
    extra = 0
    readonly_fields = ["number", "created_at", "created_by"]


@admin.register(PromptTemplate)
class PromptTemplateAdmin(WorkspaceScopedAdmin):
    list_display = ["slug", "name", "workspace", "created_at"]
    inlines = [PromptTemplateVersionInline]


@admin.register(Campaign)
class CampaignAdmin(WorkspaceScopedAdmin):
    list_display = ["slug", "name", "goal_event", "attribution_window_h", "active", "workspace"]
    list_filter = ["workspace", "active"]
    filter_horizontal = ["messages"]


@admin.register(PromptSettings)
class PromptSettingsAdmin(WorkspaceScopedAdmin):
    list_display = ["workspace", "template"]


@admin.register(Webhook)
class WebhookAdmin(WorkspaceScopedAdmin):
    list_display = ["url", "description", "campaign", "active", "workspace", "created_at"]
    list_filter = ["workspace", "active"]
    # The signing secret is shown on the webhook's page, not listed here.
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(WorkspaceScopedAdmin):
    list_display = [
        "webhook",
        "status",
        "prompt_count",
        "attempts",
        "response_code",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["workspace", "status"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    show_full_result_count = False
