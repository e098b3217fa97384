"""The REST resources of what the marketer configures: ViewSets on one router under /api/v1/."""

from rest_framework.routers import SimpleRouter

# No trailing slash, like every other route under /api/v1/.
router = SimpleRouter(trailing_slash=False)
