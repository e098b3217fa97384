"""The REST resources of what the marketer configures: ViewSets on one router under /api/v1/."""

from rest_framework.routers import SimpleRouter

from campaigns.api import config_views

# No trailing slash, like every other route under /api/v1/.
router = SimpleRouter(trailing_slash=False)
router.register("campaigns", config_views.CampaignViewSet, basename="api-campaign")
router.register("members", config_views.MemberViewSet, basename="api-member")
router.register("api-keys", config_views.ApiKeyViewSet, basename="api-key")
router.register("webhooks", config_views.WebhookViewSet, basename="api-webhook")
