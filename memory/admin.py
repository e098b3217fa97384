"""Admin for what Primer learns; rows are read-mostly (the engine writes them)."""

from django.contrib import admin

from campaigns.tenancy.admin import WorkspaceScopedAdmin
from memory.models import (
    Customer,
    CustomerLabelWeight,
    CustomerMessageHabituation,
    CustomerState,
    Event,
    EventName,
    PrimingIndicator,
    RecomputeRun,
)


@admin.register(Customer)
class CustomerAdmin(WorkspaceScopedAdmin):
    list_display = ["external_id", "workspace", "first_seen_at", "last_seen_at"]
    list_filter = ["workspace"]
    search_fields = ["external_id", "anonymous_id"]
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "customer", "occurred_at", "message_key", "workspace"]
    list_filter = ["workspace"]
    autocomplete_fields = ["customer", "message"]
    show_full_result_count = False


@admin.register(EventName)
class EventNameAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "name_hash", "workspace"]
    list_filter = ["workspace"]


@admin.register(CustomerLabelWeight)
class CustomerLabelWeightAdmin(WorkspaceScopedAdmin):
    list_display = ["customer", "label", "weight", "evidence", "lift", "computed_at"]
    autocomplete_fields = ["customer", "label"]
    show_full_result_count = False


@admin.register(CustomerMessageHabituation)
class CustomerMessageHabituationAdmin(WorkspaceScopedAdmin):
    list_display = ["customer", "message", "load", "sends", "last_sent_at"]
    autocomplete_fields = ["customer", "message"]
    show_full_result_count = False


@admin.register(PrimingIndicator)
class PrimingIndicatorAdmin(WorkspaceScopedAdmin):
    list_display = ["event_name", "lift", "odds_ratio", "support", "median_lead_h", "workspace"]
    list_filter = ["workspace"]


@admin.register(CustomerState)
class CustomerStateAdmin(WorkspaceScopedAdmin):
    list_display = ["customer", "primed_score", "baseline_rate", "last_recompute_at"]
    autocomplete_fields = ["customer"]
    show_full_result_count = False


@admin.register(RecomputeRun)
class RecomputeRunAdmin(WorkspaceScopedAdmin):
    list_display = [
        "id",
        "workspace",
        "status",
        "mode",
        "shards_done",
        "shards_total",
        "created_at",
    ]
    list_filter = ["workspace", "status"]
