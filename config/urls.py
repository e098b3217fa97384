from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from config.login_throttle import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm
from config.router import router
from memory.api.urls import api_urlpatterns, segment_urlpatterns

# Both sign-in forms lock out password guessing (config/login_throttle.py).
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Segment-compatible ingestion, so Segment's libraries and destinations work unchanged.
    path("v1/", include(segment_urlpatterns)),
    path("api/v1/", include("campaigns.api.urls")),
    path("api/v1/", include(router.urls)),
    path("api/v1/", include(api_urlpatterns)),
    path("api/v1/", include("memory.api.engine_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include("memory.web.urls")),
    path("", include("memory.web.import_urls")),
    path("", include("memory.web.insight_urls")),
    path("", include("campaigns.web.urls")),
]

# An API path that matches no route (a malformed id) answers JSON, as the API's other errors.
handler404 = "config.errors.not_found"
