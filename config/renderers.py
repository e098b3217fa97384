"""The API's shared output: renderers naming the export formats (`?format=jsonl|csv`), errors."""

import json

from django.http import Http404
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer

# What a streamed export answers with, by format.
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class JsonLinesRenderer(BaseRenderer):
    """JSON Lines; the export streams its rows itself, this renders error bodies."""

    media_type = "application/x-ndjson"
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return (json.dumps(data, ensure_ascii=False) + "\n").encode()


class CsvRenderer(JsonLinesRenderer):
    """CSV; errors are still a JSON body, which says more than a one-cell table."""

    media_type = "text/csv"
    format = "csv"


class ExportFormatMixin:
    """For streamed exports: `?format=jsonl|csv` picks the renderer; another format is a 400."""

    renderer_classes = [JsonLinesRenderer, CsvRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            if force:
                return JsonLinesRenderer(), JsonLinesRenderer.media_type
            raise ValidationError({"format": "Use format=jsonl or format=csv."}) from None


class ErrorSerializer(serializers.Serializer):
    """DRF's error body, `{"detail": "..."}`, as the schema describes 401/403/404/409 answers."""

    detail = serializers.CharField()
