"""Routes: Segment's paths under /v1/, without trailing slash as its libraries send; ours."""

from django.urls import path

from memory.api import views

segment_urlpatterns = [
    path("track", views.SegmentTrackView.as_view(), name="segment-track"),
    path("identify", views.SegmentIdentifyView.as_view(), name="segment-identify"),
    path("page", views.SegmentPageView.as_view(), name="segment-page"),
    path("screen", views.SegmentScreenView.as_view(), name="segment-screen"),
    path("batch", views.SegmentBatchView.as_view(), name="segment-batch"),
]

api_urlpatterns = [
    path("events", views.EventsView.as_view(), name="api-events"),
]
