"""Routes: Segment's paths under /v1/ (no trailing slash), ours under /api/v1/."""

from django.urls import path, re_path

from memory.api import views

segment_urlpatterns = [
    re_path(r"^track/?$", views.SegmentTrackView.as_view(), name="segment-track"),
    re_path(r"^identify/?$", views.SegmentIdentifyView.as_view(), name="segment-identify"),
    re_path(r"^page/?$", views.SegmentPageView.as_view(), name="segment-page"),
    re_path(r"^batch/?$", views.SegmentBatchView.as_view(), name="segment-batch"),
]

api_urlpatterns = [
    path("events", views.EventsView.as_view(), name="api-events"),
]
