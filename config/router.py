"""The REST resources of both apps: ViewSets on one router under /api/v1/."""

from rest_framework.routers import SimpleRouter

from campaigns.api import catalogue, config_views
from campaigns.api.audit import AuditEntryViewSet
from campaigns.api.preferences import PreferenceExportViewSet
from campaigns.api.strategy import GuardrailViewSet, OverrideViewSet
from memory.api.imports import EventImportViewSet

# No trailing slash, like every other route under /api/v1/.
router = SimpleRouter(trailing_slash=False)
router.register("audit", AuditEntryViewSet, basename="audit")
router.register("imports", EventImportViewSet, basename="imports")
router.register("preference-exports", PreferenceExportViewSet, basename="api-preference-export")
router.register("campaigns", config_views.CampaignViewSet, basename="api-campaign")
router.register("members", config_views.MemberViewSet, basename="api-member")
router.register("api-keys", config_views.ApiKeyViewSet, basename="api-key")
router.register("webhooks", config_views.WebhookViewSet, basename="api-webhook")
router.register("label-sets", catalogue.LabelSetViewSet, basename="api-label-set")
router.register("labels", catalogue.LabelViewSet, basename="api-label")
router.register("messages", catalogue.MessageViewSet, basename="api-message")
router.register("guardrails", GuardrailViewSet, basename="api-guardrail")
router.register("overrides", OverrideViewSet, basename="api-override")
